"""Verifies deliveries with the published Standard Webhooks library, not our code.

    python tests/verify_webhooks.py cases.json

cases.json: [{"secret": "whsec_...", "body": "...", "headers": {...}}, ...]
Prints a JSON array: true for each request the library accepts, else its error.
"""
import json
import sys

from standardwebhooks.webhooks import Webhook


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    results = []
    for case in cases:
        try:
            Webhook(case["secret"]).verify(case["body"], case["headers"])
            results.append(True)
        except Exception as e:  # the library's verification errors
            results.append(f"{type(e).__name__}: {e}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
