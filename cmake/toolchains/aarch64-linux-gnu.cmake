# Cross-compiling stratum's programs for 64-bit ARM Linux (AArch64) with Debian's GCC cross
# compiler (package g++-aarch64-linux-gnu), and running them under qemu-user (package
# qemu-user): CTest starts every test program through CMAKE_CROSSCOMPILING_EMULATOR.
#
#   cmake --preset aarch64 && cmake --build --preset aarch64 && ctest --preset aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# The AArch64 C library, libstdc++ and libpthread live under /usr/aarch64-linux-gnu; qemu looks
# there (-L) for the dynamic loader and shared libraries of the programs it runs.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 -L /usr/aarch64-linux-gnu)

# Programs run on the build machine; libraries must be AArch64 ones.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Eigen, doctest and stb are headers only, the same for every CPU: the build machine's copies
# (/usr/include, with their CMake packages under /usr/share and /usr/lib/cmake) serve. BOTH
# looks under /usr/aarch64-linux-gnu first, then on the build machine.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# doctest's package puts /usr/include itself on the include path; searched before the cross
# compiler's own headers, it would hand it the build machine's C library headers. -idirafter
# searches /usr/include last, after the AArch64 C and C++ headers, so only headers the cross
# compiler lacks come from there; CMake then counts /usr/include as one of the compiler's own
# directories and leaves it off the command line.
set(CMAKE_CXX_FLAGS_INIT "-idirafter /usr/include")
