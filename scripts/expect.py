"""Compares a function's response with events/<name>.expected.json; the one comparison
`scripts/invoke.sh` and `scripts/sam-local-invoke.sh` share.

    python3 scripts/expect.py ACTUAL_FILE EXPECTED_FILE

Prints the actual response compactly (and what was expected, when they differ) and exits 1 on
a difference. An SQS event's response must equal the expected one. An HTTP response (expected
has `statusCode`) must have that status and a body containing the expected body: every key of
an expected object, every element of an expected list, recursively (a pull's cursor and times
differ from run to run; its shape does not).
"""
import json
import sys


def contains(actual, expected):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(contains, actual, expected))
    return actual == expected


def parse(text):
    """The response: the whole text, or its last line that is JSON (sam prints logs first)."""
    for candidate in [text] + text.splitlines()[::-1]:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    return None


def main():
    text = open(sys.argv[1]).read().strip()
    expected = json.load(open(sys.argv[2]))
    compact = lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True)
    actual = parse(text)
    if actual is None:
        print(text.replace("\n", " ")[:300], "(expected", compact(expected) + ")")
        sys.exit(1)
    if "statusCode" in expected:
        body = actual.get("body") if isinstance(actual, dict) else None
        try:
            body = json.loads(body) if isinstance(body, str) else body
        except ValueError:
            pass
        shown = {"statusCode": actual.get("statusCode") if isinstance(actual, dict) else None, "body": body}
        ok = shown["statusCode"] == expected["statusCode"] and contains(body, expected.get("body", {}))
    else:
        shown, ok = actual, actual == expected
    print(compact(shown)[:300] if ok else f"{compact(shown)[:300]} (expected {compact(expected)})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
