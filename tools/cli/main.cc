// `trlmdb`: the command-line tool of trlmdb. Dispatches to the subcommands of
// commands.h; reads and writes environments through the real liblmdb (never
// through the shim's exported C API), using the shim's format, clock and meta
// helpers. `serve` alone opens its environment through the shim's C++ core,
// which starts the replicator.
#include <lmdb.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli_common.h"
#include "commands.h"

#ifndef TRLMDB_VERSION_STRING
#define TRLMDB_VERSION_STRING "unknown"
#endif

namespace trlmdb::cli {
namespace {

const Command *const kCommands[] = {&kVerifyCommand, &kStatCommand, &kDigestCommand, &kAdoptCommand,
                                    &kServeCommand};

void print_usage(std::FILE *out) {
  std::fputs(
      "usage: trlmdb COMMAND [OPTIONS] ENV\n"
      "       trlmdb COMMAND --help\n"
      "\n"
      "Tools for LMDB environments kept by trlmdb. ENV is an environment directory,\n"
      "or the data file of an MDB_NOSUBDIR environment.\n"
      "\n"
      "commands:\n",
      out);
  for (const Command *c : kCommands) std::fprintf(out, "  %-8s %s\n", c->name, c->summary);
  std::fputs(
      "\n"
      "options:\n"
      "  -h, --help     show this help\n"
      "  --version      show the versions of trlmdb and of the LMDB library\n"
      "\n"
      "exit status: 0 success, 1 check failed (verify), 2 usage or I/O error\n",
      out);
}

int dispatch(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return kExitError;
  }
  std::string first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    if (first == "help" && argc > 2) {
      for (const Command *c : kCommands) {
        if (argv[2] == std::string(c->name)) {
          std::fputs(c->help, stdout);
          return kExitOk;
        }
      }
      std::fprintf(stderr, "trlmdb: unknown command '%s'; see 'trlmdb --help'\n", argv[2]);
      return kExitError;
    }
    print_usage(stdout);
    return kExitOk;
  }
  if (first == "--version" || first == "-V") {
    std::printf("trlmdb %s (%s)\n", TRLMDB_VERSION_STRING, mdb_version(nullptr, nullptr, nullptr));
    return kExitOk;
  }
  for (const Command *c : kCommands) {
    if (first != c->name) continue;
    try {
      return c->run(argc - 2, argv + 2);
    } catch (const UsageError &e) {
      std::fprintf(stderr, "trlmdb %s: %s\nTry 'trlmdb %s --help'.\n", c->name, e.what(), c->name);
    } catch (const Error &e) {
      std::fprintf(stderr, "trlmdb %s: %s\n", c->name, e.what());
    } catch (const std::exception &e) {
      std::fprintf(stderr, "trlmdb %s: internal error: %s\n", c->name, e.what());
    }
    return kExitError;
  }
  std::fprintf(stderr, "trlmdb: unknown command '%s'; see 'trlmdb --help'\n", first.c_str());
  return kExitError;
}

}  // namespace
}  // namespace trlmdb::cli

int main(int argc, char **argv) {
  int rc = trlmdb::cli::dispatch(argc, argv);
  if (std::fflush(stdout) != 0 && rc == 0) {
    std::fprintf(stderr, "trlmdb: cannot write the output: %s\n", std::strerror(errno));
    return trlmdb::cli::kExitError;
  }
  return rc;
}
