/* Test-only: a Windows process that prints its process id (as Windows, here wine,
   numbers it) and runs until its standard input closes. platforms.test.mjs builds it
   with zig (scripts/setup-cross) into its wine prefix and runs it under wine64 as an
   outbox writer that still runs: the CLI must hold that writer's drafts, and send them
   once it has ended. Linux needs no such thing: any process's pid will do there. */
#include <stdio.h>
#include <windows.h>

int main(void) {
  printf("%lu\n", (unsigned long)GetCurrentProcessId());
  fflush(stdout);
  char buf[256];
  DWORD n;
  while (ReadFile(GetStdHandle(STD_INPUT_HANDLE), buf, sizeof buf, &n, NULL) && n > 0) {
  }
  return 0;
}
