// Work sharing with XLA's intra-op thread pool, and per-task scratch, for
// the FFI handlers in gemm.cc, conv.cc, scan.cc, tropical.cc and extreme.cc.
//
// The calling thread takes work items too and never waits for an item that
// has not started, so a busy pool only means less parallelism, never a
// deadlock.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace contract {

// Runs body(0..items-1) on the calling thread and up to `helpers` of the
// pool's threads; on the calling thread alone when there are fewer than
// `min_elements` elements of work.
template <typename Pool>
void Parallel(Pool& pool, int64_t min_elements, int64_t items, int64_t elements,
              const std::function<void(int64_t)>& body, int64_t helpers = INT64_MAX) {
  helpers = std::min<int64_t>({helpers, pool.num_threads(), items - 1});
  if (elements < min_elements) helpers = 0;
  if (helpers <= 0) {
    for (int64_t i = 0; i < items; ++i) body(i);
    return;
  }
  struct State {
    std::atomic<int64_t> next{0}, done{0};
    int64_t items;
    const std::function<void(int64_t)>* body;
  };
  auto state = std::make_shared<State>();
  state->items = items;
  state->body = &body;
  auto work = [](State& s) {
    for (int64_t i; (i = s.next.fetch_add(1)) < s.items;) {
      (*s.body)(i);
      s.done.fetch_add(1, std::memory_order_release);
    }
  };
  // A helper that starts after every item is taken only reads the counters
  // (kept alive by its shared_ptr), never `body`, which lives on this stack.
  for (int64_t h = 0; h < helpers; ++h) pool.Schedule([state, work] { work(*state); });
  work(*state);
  while (state->done.load(std::memory_order_acquire) < items) std::this_thread::yield();
}

// Runs body(begin, end) over [0, n) on the calling thread and up to
// `helpers` of the pool's threads, in guided chunks: each claim takes a
// 2 * workers-th of what is left, at least `least`, so that the threads
// first stream long contiguous ranges and then share the tail in small
// pieces, whichever thread started late (a woken pool thread). For work
// bound by memory bandwidth: against Parallel's fixed items, a row
// reduction of 2048² float32 took 160-240 µs a call (median of three
// processes) against 222-301, measured. Deadlock-free as Parallel is: the
// caller waits only for ranges that were claimed.
template <typename Pool, typename Body>
void Guided(Pool& pool, int64_t n, int64_t least, int64_t helpers, Body body) {
  helpers = std::min<int64_t>(helpers, pool.num_threads());
  const int64_t workers = std::max<int64_t>(1, helpers + 1);
  struct State {
    std::atomic<int64_t> next{0}, done{0};
  };
  auto state = std::make_shared<State>();
  // Copied into every task, so a helper that starts after the call returned
  // finds nothing to claim and touches nothing else.
  auto work = [state, n, least, workers, body]() {
    State& s = *state;
    for (int64_t v = s.next.load();;) {
      if (v >= n) return;
      const int64_t end = v + std::min(n - v, std::max(least, (n - v) / (2 * workers)));
      if (!s.next.compare_exchange_weak(v, end)) continue;
      body(v, end);
      s.done.fetch_add(end - v, std::memory_order_release);
      v = s.next.load();
    }
  };
  for (int64_t h = 0; h < helpers; ++h) {
    auto task = work;
    pool.Schedule(std::move(task));
  }
  work();
  while (state->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
}

// A task's scratch buffers are kept per thread: a fresh buffer of over
// 128 KiB would be a fresh mmap, page faults included, in every task. One
// that grew past kKeepBytes is released after its task, so that no thread
// holds a large one for good.
constexpr size_t kKeepBytes = size_t{4} << 20;

template <typename V>
void Trim(std::vector<V>& buffer) {
  if (buffer.capacity() * sizeof(V) > kKeepBytes) std::vector<V>().swap(buffer);
}

}  // namespace contract
