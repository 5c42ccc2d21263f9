// The contraction-tree annealer's move loop (contract/planner/optimizers/anneal.py)
// in C++: the same rotations, the same local acceptance rule, the same
// cooling and the same objectives, ~30x faster than the Python loop, which
// spends a move's 3-7 us on interpreter overhead around a few bitset
// operations. It is the extension module contract._anneal (nanobind), always
// built with the package: it needs no XLA and no BLAS, and a plan must not
// depend on whether a compiler was present. The planner calls it from
// contract/planner/optimizers/compiled.py with the GIL released, so threads
// plan in parallel.
//
// A tree over n leaves is two index arrays: node v < n is leaf v, internal
// nodes are n .. 2n-2 and the root is 2n-2. Leg sets are bitsets of `words`
// 64-bit words. Per node the loop keeps its legs, `raw` (the legs of the
// leaves under it), `ext` (the legs of the leaves outside it) and its cost;
// rotating p = (x, (g, h)) into ((x, g), h) rewrites the child y only.
//
// A leg set's size is 2^min(sum over size classes of log2(size) *
// popcount(bits & class mask), 1000), as the Python side counts it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "nanobind/nanobind.h"
#include "nanobind/ndarray.h"

namespace {

constexpr double kSoftCap = 1.329227995784916e36;  // 2^120: "size"'s soft maximum
constexpr double kPenalty = 1099511627776.0;       // 2^40, per unit of squared excess
constexpr double kPenaltyCap = 6.668014432879854e240;  // 2^800
constexpr double kOverCap = 1.152921504606846976e18;   // 2^60

// xoshiro256**: a fast generator of good quality, seeded by splitmix64.
struct Rng {
  uint64_t s[4];
  explicit Rng(uint64_t seed) {
    for (auto& v : s) {
      seed += 0x9E3779B97F4A7C15ull;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      v = z ^ (z >> 31);
    }
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

struct Objective {
  int kind;       // 0 flops, 1 write, 2 combo, 3 size (objective.py's kinds)
  double factor;  // combo's weight of a written element
  double limit;   // largest intermediate allowed; <= 0: none
  bool needs_out() const { return kind != 0 || limit > 0; }
  double node(double contraction, double out) const {
    double cost;
    switch (kind) {
      case 0: cost = contraction; break;
      case 1: cost = out; break;
      case 2: cost = contraction + factor * out; break;
      default: {
        const double s = std::min(out, kSoftCap);
        const double s2 = s * s, s4 = s2 * s2;
        cost = s4 * s4 + contraction;
      }
    }
    if (limit > 0 && out > limit) {
      const double over = std::min(out / limit, kOverCap);
      cost += std::min(contraction, kPenaltyCap) * kPenalty * over * over;
    }
    return cost;
  }
};

class Annealer {
 public:
  Annealer(int n, int words, const uint64_t* leaf_legs, const uint64_t* out, int classes,
           const double* class_log2, const uint64_t* class_masks, int32_t* left,
           int32_t* right, Objective objective)
      : n_(n), w_(words), nodes_(2 * n - 1), out_(out, out + words),
        log_(class_log2, class_log2 + classes),
        masks_(class_masks, class_masks + size_t(classes) * words), left_(left),
        right_(right), objective_(objective), legs_(size_t(nodes_) * words, 0),
        raw_(size_t(nodes_) * words, 0), ext_(size_t(nodes_) * words, 0),
        cost_(nodes_, 0.0), tmp_(3 * size_t(words)) {
    std::memcpy(legs_.data(), leaf_legs, sizeof(uint64_t) * n * words);
    std::memcpy(raw_.data(), leaf_legs, sizeof(uint64_t) * n * words);
    Rebuild();
  }

  double Total() const {
    double total = 0;
    for (int v = n_; v < nodes_; ++v) total += cost_[v];
    return total;
  }

  // Returns 1 when the tree left in left/right differs from the start, 0
  // when the start was the best seen (left/right then hold it unchanged).
  int Run(int64_t moves, uint64_t seed, double hot, double cold, double focus,
          double seconds, const std::function<void(int64_t, int64_t)>& progress) {
    Rng rng(seed);
    std::vector<int32_t> best_left(left_, left_ + nodes_), best_right(right_, right_ + nodes_);
    bool improved = false;
    double best_total = Total();
    std::vector<int32_t> costly;
    const auto start = std::chrono::steady_clock::now();
    double temp = hot;
    int64_t done = 0;
    uint64_t* ly = tmp_.data();
    uint64_t* both = ly + w_;
    uint64_t* ey = both + w_;
    while (done < moves) {
      if (done % 1000 == 0) {
        const double elapsed =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (elapsed > seconds) break;
        if (progress) progress(done, moves);
        temp = hot * std::pow(cold / hot, double(done) / double(moves));
        const double total = Total();
        if (total < best_total) {
          best_total = total;
          std::copy(left_, left_ + nodes_, best_left.begin());
          std::copy(right_, right_ + nodes_, best_right.begin());
          improved = true;
        }
        if (focus > 0) {
          const double floor = *std::max_element(cost_.begin() + n_, cost_.end()) * 1e-4;
          costly.clear();
          for (int v = n_; v < nodes_; ++v)
            if (cost_[v] >= floor) costly.push_back(v);
        }
      }
      ++done;
      int p;
      if (focus > 0 && rng.uniform() < focus) {
        p = costly[size_t(rng.uniform() * costly.size())];
      } else {
        p = n_ + int(rng.uniform() * (n_ - 1));
      }
      int x = left_[p], y = right_[p];
      if (rng.uniform() >= 0.5) std::swap(x, y);
      if (y < n_) {
        if (x < n_) continue;
        std::swap(x, y);
      }
      int g = left_[y], h = right_[y];
      if (rng.uniform() >= 0.5) std::swap(g, h);
      // y' = (x, g) under p' = (y', h); p keeps its leaves, hence its legs.
      const uint64_t *lx = Legs(x), *lg = Legs(g), *lh = Legs(h);
      const uint64_t *ep = Ext(p), *rh = Raw(h);
      for (int i = 0; i < w_; ++i) {
        both[i] = lx[i] | lg[i];
        ey[i] = ep[i] | rh[i];
        ly[i] = both[i] & (ey[i] | out_[i]);
      }
      double cy, cp;
      const double contraction_y = Size(both);
      for (int i = 0; i < w_; ++i) both[i] = ly[i] | lh[i];
      const double contraction_p = Size(both);
      if (objective_.needs_out()) {
        cy = objective_.node(contraction_y, Size(ly));
        cp = objective_.node(contraction_p, Size(Legs(p)));
      } else {
        cy = contraction_y;
        cp = contraction_p;
      }
      const double old = cost_[y] + cost_[p];
      const double delta = cy + cp - old;
      if (delta > 0 && rng.uniform() >= std::exp(-std::log2(1 + delta / old) / temp)) continue;
      left_[y] = x;
      right_[y] = g;
      left_[p] = y;
      right_[p] = h;
      uint64_t *dly = Legs(y), *dry = Raw(y), *dey = Ext(y);
      const uint64_t *rx = Raw(x), *rg = Raw(g);
      for (int i = 0; i < w_; ++i) {
        dly[i] = ly[i];
        dry[i] = rx[i] | rg[i];
        dey[i] = ey[i];
      }
      cost_[y] = cy;
      cost_[p] = cp;
    }
    if (progress) progress(moves, moves);
    if (Total() < best_total) return 1;
    std::copy(best_left.begin(), best_left.end(), left_);
    std::copy(best_right.begin(), best_right.end(), right_);
    return improved ? 1 : 0;
  }

 private:
  uint64_t* Legs(int v) { return legs_.data() + size_t(v) * w_; }
  uint64_t* Raw(int v) { return raw_.data() + size_t(v) * w_; }
  uint64_t* Ext(int v) { return ext_.data() + size_t(v) * w_; }

  double Size(const uint64_t* bits) const {
    double e = 0;
    for (size_t c = 0; c < log_.size(); ++c) {
      const uint64_t* m = masks_.data() + c * w_;
      int count = 0;
      for (int i = 0; i < w_; ++i) count += __builtin_popcountll(bits[i] & m[i]);
      e += log_[c] * count;
    }
    return std::exp2(std::min(e, 1000.0));
  }

  // raw bottom-up, ext top-down, then legs and costs bottom-up, in an
  // explicit post-order (trees can be as deep as they have leaves).
  void Rebuild() {
    std::vector<int32_t> order;  // internal nodes, parents before children
    order.reserve(nodes_);
    std::vector<int32_t> stack{nodes_ - 1};
    while (!stack.empty()) {
      const int v = stack.back();
      stack.pop_back();
      if (v < n_) continue;
      order.push_back(v);
      stack.push_back(left_[v]);
      stack.push_back(right_[v]);
    }
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      uint64_t *r = Raw(*it), *a = Raw(left_[*it]), *b = Raw(right_[*it]);
      for (int i = 0; i < w_; ++i) r[i] = a[i] | b[i];
    }
    std::fill(ext_.begin() + size_t(nodes_ - 1) * w_, ext_.end(), 0);
    for (const int v : order) {
      const int a = left_[v], b = right_[v];
      uint64_t *e = Ext(v), *ea = Ext(a), *eb = Ext(b), *ra = Raw(a), *rb = Raw(b);
      for (int i = 0; i < w_; ++i) {
        ea[i] = e[i] | rb[i];
        eb[i] = e[i] | ra[i];
      }
    }
    std::vector<uint64_t> both(w_);
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      const int v = *it;
      uint64_t *l = Legs(v), *la = Legs(left_[v]), *lb = Legs(right_[v]), *e = Ext(v);
      for (int i = 0; i < w_; ++i) {
        both[i] = la[i] | lb[i];
        l[i] = both[i] & (e[i] | out_[i]);
      }
      cost_[v] = objective_.node(Size(both.data()), Size(l));
    }
  }

  const int n_, w_, nodes_;
  const std::vector<uint64_t> out_;
  const std::vector<double> log_;
  const std::vector<uint64_t> masks_;
  int32_t* left_;
  int32_t* right_;
  const Objective objective_;
  std::vector<uint64_t> legs_, raw_, ext_;
  std::vector<double> cost_;
  std::vector<uint64_t> tmp_;
};

namespace nb = nanobind;
using Bits = nb::ndarray<const uint64_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Children = nb::ndarray<int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using Logs = nb::ndarray<const double, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// Anneals the tree in left/right (2n-1 entries each, root 2n-2) for `moves`
// rotations, or until `seconds` have passed (a fuse), and leaves the best
// tree seen there. Returns True if that is not the start tree. `progress(done,
// moves)`, if not None, is called every 1000 moves (with the GIL held).
bool Anneal(int32_t n, int32_t words, Bits leaf_legs, Bits out, Logs class_log2,
            Bits class_masks, Children left, Children right, int64_t moves, uint64_t seed,
            double hot, double cold, double focus, int32_t kind, double factor, double limit,
            double seconds, nb::object progress) {
  const size_t nodes = 2 * size_t(n) - 1, classes = class_log2.shape(0);
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw nb::value_error(("anneal: " + what).c_str());
  };
  require(n >= 3 && words >= 1, "needs at least 3 leaves and 1 word per leg set");
  require(kind >= 0 && kind <= 3, "objective kind must be 0..3");
  require(moves >= 0, "moves must be >= 0");
  require(leaf_legs.shape(0) == size_t(n) * words, "leaf_legs must hold n * words words");
  require(out.shape(0) == size_t(words), "out must hold words words");
  require(class_masks.shape(0) == classes * words, "class_masks must hold classes * words words");
  require(left.shape(0) == nodes && right.shape(0) == nodes, "left and right must hold 2n - 1 nodes");
  std::function<void(int64_t, int64_t)> report;
  if (!progress.is_none())
    report = [&progress](int64_t done, int64_t total) {
      nb::gil_scoped_acquire held;
      progress(done, total);
    };
  nb::gil_scoped_release released;
  Annealer annealer(n, words, leaf_legs.data(), out.data(), int(classes), class_log2.data(),
                    class_masks.data(), left.data(), right.data(), Objective{kind, factor, limit});
  return annealer.Run(moves, seed, hot, cold, focus, seconds, report) == 1;
}

}  // namespace

NB_MODULE(_anneal, m) {
  m.doc() = "contract's contraction-tree annealer (planner code: no XLA, no BLAS).";
  m.def("anneal", &Anneal, nb::arg("n"), nb::arg("words"), nb::arg("leaf_legs"), nb::arg("out"),
        nb::arg("class_log2"), nb::arg("class_masks"), nb::arg("left"), nb::arg("right"),
        nb::arg("moves"), nb::arg("seed"), nb::arg("hot"), nb::arg("cold"), nb::arg("focus"),
        nb::arg("kind"), nb::arg("factor"), nb::arg("limit"), nb::arg("seconds"),
        nb::arg("progress").none(),
        "Anneal the tree in left/right in place; True if it is not the start tree.");
}
