#include "repl_hooks.h"

namespace trlmdb {

namespace {
std::atomic<const ReplHooks *> g_hooks{nullptr};
}

void install_repl_hooks(const ReplHooks *hooks) { g_hooks.store(hooks, std::memory_order_release); }

const ReplHooks *repl_hooks() { return g_hooks.load(std::memory_order_acquire); }

}  // namespace trlmdb
