"""Turns the llhttp request fixtures (../shared/conformance/llhttp-requests/*.md) into cases.

One extractor for every consumer: the live test suite imports `load_cases()`, and
`python3 tests/support/llhttp_cases.py` writes tests/data/llhttp-cases.json for the Rust
codec test. Each case: file, title, type, raw request bytes, whether strict llhttp rejects it,
and the messages llhttp saw (method, url, headers, body) so a test can check that what reached
a backend has the same meaning.
"""

import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
FIXTURES = os.environ.get(
    "LLHTTP_FIXTURES",
    os.path.normpath(os.path.join(ROOT, "..", "shared", "conformance", "llhttp-requests")),
)
VENDORED = os.path.join(ROOT, "tests", "data", "llhttp-requests")

META = re.compile(r"<!--\s*meta=(\{.*?\})\s*-->")
SPAN = re.compile(r'^off=\d+ len=\d+ span\[([a-z_]+)\]="(.*)"$')


def _unescape(text: str) -> bytes:
    """Expands \\r \\n \\t \\f \\xNN \\NNN into characters, then encodes as UTF-8, as
    llhttp's harness does (so `\\xff` goes on the wire as U+00FF in UTF-8, which the fixture's
    span lengths confirm)."""
    out = []
    i = 0
    simple = {"r": "\r", "n": "\n", "t": "\t", "f": "\f"}
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n in simple:
                out.append(simple[n])
                i += 2
                continue
            if n == "x" and re.match(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
                out.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
                continue
            m = re.match(r"[0-7]{1,3}", text[i + 1 : i + 4])
            if m:
                out.append(chr(int(m.group(0), 8) & 0xFF))
                i += 1 + len(m.group(0))
                continue
        out.append(c)
        i += 1
    return "".join(out).encode("utf-8")


def _unescape_http(block: str) -> bytes:
    """The fixture's http block -> bytes, as llhttp's own harness builds them."""
    text = block
    if text.endswith("\n"):
        text = text[:-1]
    text = re.sub(r"\\\n", "", text)
    return _unescape(text.replace("\n", "\r\n"))


# Span strings in the logs use the same escapes (quotes and backslashes stay literal: the span
# lengths in the logs confirm it).
_unescape_log = _unescape


def _messages(log: str):
    """What llhttp saw, message by message."""
    msgs, cur, field = [], None, None

    def fresh():
        return {"method": b"", "url": b"", "headers": [], "body": b"", "complete": False}

    for line in log.splitlines():
        m = SPAN.match(line.strip())
        if m:
            kind, val = m.group(1), _unescape_log(m.group(2))
            if cur is None:
                cur = fresh()
            if kind == "method":
                cur["method"] += val
            elif kind == "url":
                cur["url"] += val
            elif kind == "header_field":
                if field is None:
                    cur["headers"].append([val, b""])
                    field = "name"
                else:
                    cur["headers"][-1][0] += val
            elif kind == "header_value":
                cur["headers"][-1][1] += val
            elif kind == "body":
                cur["body"] += val
            continue
        if "header_field complete" in line:
            field = None
        elif "message complete" in line and cur is not None:
            cur["complete"] = True
            msgs.append(cur)
            cur = None
        elif "message begin" in line and cur is None:
            cur = fresh()
    return msgs


def load_cases(directory: str = ""):
    """All cases in the fixture directory (vendored copy if the shared one is absent)."""
    directory = directory or (FIXTURES if os.path.isdir(FIXTURES) else VENDORED)
    cases = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".md") or name == "README.md":
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            text = f.read()
        title = ""
        pos = 0
        for m in re.finditer(r"^(#+ .*)$|<!--\s*meta=.*?-->", text, re.M):
            if m.group(1):
                title = m.group(1).lstrip("# ").strip()
                continue
            meta_m = META.search(m.group(0))
            try:
                meta = json.loads(meta_m.group(1)) if meta_m else {}
            except json.JSONDecodeError:
                continue
            pos = m.end()
            http = re.compile(r"```http\n(.*?)```", re.S).search(text, pos)
            log = re.compile(r"```log\n(.*?)```", re.S).search(text, pos)
            if not http or not log:
                continue
            if "${" in http.group(1):
                continue
            # skipBody makes llhttp's harness skip bodies (as after a HEAD request): a parser
            # mode for responses, meaningless for requests reaching a proxy.
            if meta.get("skipBody"):
                continue
            raw = _unescape_http(http.group(1))
            log_text = log.group(1)
            cases.append(
                {
                    "file": name,
                    "title": title,
                    "type": meta.get("type", ""),
                    "raw": raw,
                    "rejected": "error code=" in log_text,
                    "messages": _messages(log_text),
                }
            )
    return cases


def _bytes_str(b: bytes) -> str:
    """Bytes as a JSON-safe string, one char per byte (latin-1)."""
    return b.decode("latin-1")


def main():
    out = os.path.join(ROOT, "tests", "data", "llhttp-cases.json")
    cases = load_cases()
    doc = [
        {
            "file": c["file"],
            "title": c["title"],
            "type": c["type"],
            "raw": _bytes_str(c["raw"]),
            "rejected": c["rejected"],
            "messages": [
                {
                    "method": _bytes_str(m["method"]),
                    "url": _bytes_str(m["url"]),
                    "headers": [[_bytes_str(n), _bytes_str(v)] for n, v in m["headers"]],
                    "body": _bytes_str(m["body"]),
                }
                for m in c["messages"]
            ],
        }
        for c in cases
    ]
    with open(out, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    strict = [c for c in cases if c["type"] == "request"]
    print(f"{len(cases)} cases ({len(strict)} strict, {sum(c['rejected'] for c in strict)} rejected) -> {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
