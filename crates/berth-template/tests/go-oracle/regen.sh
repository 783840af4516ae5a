#!/bin/sh
# Regenerate tests/golden.json with Go's own text/template (needs golang-go).
set -eu
cd "$(dirname "$0")"
go run . ../cases.json ../datasets.json > ../golden.json.new
mv ../golden.json.new ../golden.json
