// gantry-bench's own options (beside Catch's): how big and how many rounds.
#pragma once

namespace gantry::bench {

struct BenchOptions {
  bool quick = false;  // a few seconds per scenario: the test suite's smoke run
  int rounds = 3;      // each figure is the median of this many rounds
};

BenchOptions& Options();

// n, or a small fraction of it for --quick.
inline int Size(int full, int quick) { return Options().quick ? quick : full; }

}  // namespace gantry::bench
