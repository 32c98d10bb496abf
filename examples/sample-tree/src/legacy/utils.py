def chunked(items, size):
    """Yield successive chunks of `size` from `items`."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
