// trlmdb-repl-bench: shared pieces of the driver (repl_bench.cc) and of the
// node processes it forks (repl_bench_node.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace rbench {

// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the run, so
// a commit time taken on A and a visibility time taken on B can be subtracted.
uint64_t now_ns();

constexpr size_t kKeySize = 16;

// Deterministic data: any process can regenerate key i of a run and the value
// a given version of it must hold, so a node can check what it received
// without being sent the expected data.
void make_key(uint64_t seed, uint64_t i, unsigned char out[kKeySize]);
void make_value(uint64_t seed, uint64_t i, uint32_t version, unsigned char *out, size_t n);

// The keys the catch-up workload changes while B is down, out of keys
// [0, n): `nupd` updated then `ndel` deleted, all distinct and spread over the
// key range. New keys are [n, n + nnew).
uint64_t changed_index(uint64_t n, uint64_t nupd_plus_ndel, uint64_t j);

// What a node process is started with. Everything is decided before the fork;
// the child only calls setenv and opens the environment.
struct NodeSpec {
  std::string name;    // "A", "B", ... (messages only)
  std::string dir;     // environment directory, created by the child if missing
  std::string listen;  // TRLMDB_LISTEN
  std::string peers;   // TRLMDB_PEERS, "" for none
  std::string secret;  // TRLMDB_SECRET
  std::string log;     // TRLMDB_LOG
  uint64_t mapsize = 0;
  size_t value_size = 100;
  bool sync = false;  // false: MDB_NOSYNC
};

// Body of a forked node: opens the environment, then answers one line on
// reply_fd for each line read from cmd_fd (protocol at the top of
// repl_bench_node.cc). Never returns.
[[noreturn]] void node_main(const NodeSpec &spec, int cmd_fd, int reply_fd);

}  // namespace rbench
