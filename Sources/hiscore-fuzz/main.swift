import HiscoreFuzzing
// hiscore-fuzz: libFuzzer target over the connection preface, the frame decoder and envelope
// decoding (see Sources/HiscoreFuzzing/FuzzHarness.swift for what one input exercises and the
// oracles it checks).
//
// Fuzz build (fuzz/run.sh, make fuzz):
//   swift build -c debug --scratch-path .build-fuzz --product hiscore-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -DHISCORE_FUZZ -Xcc -fsanitize=fuzzer-no-link,address
// Then it is a regular libFuzzer binary: `hiscore-fuzz [libFuzzer flags] CORPUS_DIR...`, or
// `hiscore-fuzz FILE...` to replay inputs. Run it with SWIFT_BACKTRACE=enable=no.
//
// Plain build (`swift build` builds every target): a replay tool; `hiscore-fuzz PATH...` runs every
// file (directories: every file in them) once through the same harness and exits 1 if an oracle broke.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if HISCORE_FUZZ
// This `main` (SwiftPM's) replaces libFuzzer's, so it hands control to libFuzzer's driver itself.
// Build with `-Xswiftc -sanitize=fuzzer,address`, not `--sanitize fuzzer`: SwiftPM then compiles
// this file with -parse-as-library (no top-level code) and links libFuzzer's main (duplicate `main`).
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))

/// libFuzzer's per-input entry point.
@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzOneInput(data, size)
}

/// `int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size))`
/// from libclang_rt.fuzzer: parses libFuzzer's flags, then fuzzes (or replays the files named).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32
#else
exit(FuzzReplay.main(Array(CommandLine.arguments.dropFirst())))
#endif
