#!/bin/sh
# Deploy script for the retired VM fleet.
set -eu
rsync -a build/ deploy@old-fleet.example.invalid:/srv/app/
