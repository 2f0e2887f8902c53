/* Test-only: Windows 10+ has bcryptprimitives.dll, whose ProcessPrng Rust's standard
   library uses for random numbers; Debian's wine 8.0 does not. platforms.test.mjs builds
   this stand-in with zig (scripts/setup-cross) into its wine prefix's system32, so the
   Windows CLI starts under wine. It asks bcrypt.dll, which wine has, for the bytes. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  return BCryptGenRandom(NULL, data, (ULONG)len, BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0;
}
