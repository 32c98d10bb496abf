"""Legacy payment gateway client, replaced by payments_v2 in 2024."""
import hashlib
import json


class PaymentClient:
    def __init__(self, api_key: str, endpoint: str = "https://pay.example.invalid/v1"):
        self.api_key = api_key
        self.endpoint = endpoint

    def sign(self, payload: dict) -> str:
        body = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(body + self.api_key.encode()).hexdigest()

    def charge(self, amount_cents: int, currency: str = "EUR") -> dict:
        payload = {"amount": amount_cents, "currency": currency}
        return {"payload": payload, "signature": self.sign(payload)}
