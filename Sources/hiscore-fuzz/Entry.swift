import HiscoreFuzzing
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs one input; an oracle violation is a crash (libFuzzer saves the input as crash-*).
func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let report = FuzzHarness.run(UnsafeRawBufferPointer(start: data, count: size))
    if !report.violations.isEmpty {
        fatalError("hiscore-fuzz oracle violated:\n" + report.violations.joined(separator: "\n"))
    }
    return 0
}

/// Replay mode of a build without libFuzzer: every file named (or in a directory named) once.
enum FuzzReplay {
    static func main(_ arguments: [String]) -> Int32 {
        if arguments.isEmpty || arguments.contains("-h") || arguments.contains("--help") {
            print("""
                usage: hiscore-fuzz PATH...   replay files (directories: their files) through the harness
                (this build has no libFuzzer: build with fuzz/run.sh or make fuzz to fuzz)
                """)
            return arguments.isEmpty ? 2 : 0
        }
        var files: [String] = []
        for path in arguments {
            files += listFiles(path)
        }
        var failed = 0
        var totals = FuzzReport()
        for file in files {
            guard let bytes = readFile(file) else {
                print("\(file): cannot read")
                failed += 1
                continue
            }
            let report = bytes.withUnsafeBytes { FuzzHarness.run($0) }
            totals.frames += report.frames
            totals.requestsDecoded += report.requestsDecoded
            totals.responsesDecoded += report.responsesDecoded
            if !report.violations.isEmpty {
                failed += 1
                print("\(file): FAILED")
                for violation in report.violations { print("  \(violation)") }
            }
        }
        print("""
            replayed \(files.count) inputs: \(totals.frames) frames, \(totals.requestsDecoded) requests and \
            \(totals.responsesDecoded) responses decoded, \(failed) failed
            """)
        return failed == 0 ? 0 : 1
    }

    static func listFiles(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [path] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(path + "/" + name) }
        }
        return names.sorted().flatMap { listFiles($0) }
    }

    static func readFile(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
            bytes += chunk.prefix(count)
            if count < chunk.count { break }
        }
        return ferror(file) == 0 ? bytes : nil
    }
}
