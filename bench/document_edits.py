"""What the open-document mirror and the minimal edits cost (backend/documents.py), in-process.

Prints, for documents of 1k, 10k and 50k lines (~40 bytes a line):
  1. one keystroke's `didChange` applied to the mirror, at the top and at the end of the document (µs),
  2. `text_edits` (the diff sent as workspace/applyEdit) for one changed line, 100 changed lines
     spread over the file, and every line changed (ms), with the number of edits it made.
Usage: python bench/document_edits.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from crush_ls.backend.documents import Documents, text_edits


def median_us(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def keystroke(documents: Documents, uri: str, line: int) -> Callable[[], None]:
    version = [1]

    def type_one() -> None:
        version[0] += 1
        position = {"line": line, "character": 4}
        documents.change(uri, version[0], [{"range": {"start": position, "end": position}, "text": "x"}])

    return type_one


def main() -> None:
    print(f"{'lines':>6} {'keystroke top µs':>17} {'keystroke end µs':>17} {'1 line ms':>10} "
          f"{'100 lines ms':>13} {'all lines ms':>13} {'edits (1/100/all)':>18}")
    for lines in (1_000, 10_000, 50_000):
        text = "".join(f"    value_{n} = compute({n}, 'some text')\n" for n in range(lines))
        documents = Documents()
        uri = "file:///bench/a.py"
        documents.open(uri, 1, text)
        top = median_us(keystroke(documents, uri, 0), 200)
        end = median_us(keystroke(documents, uri, lines - 1), 200)
        one = text.replace(f"value_{lines // 2} =", f"renamed_{lines // 2} =")
        spread = "".join(line.replace("compute", "calc") if n % (lines // 100) == 0 else line
                         for n, line in enumerate(text.splitlines(keepends=True)))
        every = text.replace("compute", "calc")
        counts, times = [], []
        for new in (one, spread, every):
            counts.append(len(text_edits(text, new, "utf-16")))
            times.append(median_us(lambda new=new, text=text: text_edits(text, new, "utf-16"), 5) / 1000)
        print(f"{lines:>6} {top:>17.1f} {end:>17.1f} {times[0]:>10.2f} {times[1]:>13.2f} {times[2]:>13.2f} "
              f"{'/'.join(map(str, counts)):>18}")


if __name__ == "__main__":
    main()
