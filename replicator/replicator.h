// The replicator's entry points for the C ABI and the tools. Everything
// else in replicator/ is internal to it.
#pragma once

#include <lmdb.h>

#include <string>

#include "trlmdb.h"

namespace trlmdb::repl {

// Installs the shim's hooks (repl_hooks.h): from then on a configured
// environment opened read-write through the shim gets a replicator.
void install();

int status(MDB_env *env, TRLMDB_repl_status *out);
int sync(MDB_env *env, unsigned timeout_ms);

// For `trlmdb serve`: whether env's replicator runs in this process, and if
// not, why (one line: not configured, bad configuration, lock held by pid N).
bool running(MDB_env *env, std::string *why);

}  // namespace trlmdb::repl
