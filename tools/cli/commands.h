// The subcommands of `trlmdb`. Each takes the arguments after its name,
// prints its output on stdout and returns the exit code; usage mistakes throw
// UsageError and I/O or LMDB errors throw Error (both exit 2, see main.cc).
#pragma once

namespace trlmdb::cli {

struct Command {
  const char *name;
  const char *summary;  // one line for `trlmdb --help`
  const char *help;     // the text of `trlmdb NAME --help`
  int (*run)(int argc, char **argv);
};

extern const Command kVerifyCommand;
extern const Command kStatCommand;
extern const Command kDigestCommand;
extern const Command kAdoptCommand;
extern const Command kServeCommand;

}  // namespace trlmdb::cli
