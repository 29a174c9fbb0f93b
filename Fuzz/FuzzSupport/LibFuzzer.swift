// The one libFuzzer entry the fuzz targets share (built only with UDOCKER_FUZZ=1), and their
// scratch files. SwiftPM links a debug executable with `main = <Target>_main`, so each target
// defines that symbol and hands its body to `libFuzzerMain`, which runs libFuzzer's own driver.
#if canImport(Glibc)
import Glibc
#endif

public typealias CArguments = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<CArguments>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

nonisolated(unsafe) private var fuzzBody: ((UnsafeRawBufferPointer) -> Void)?

/// libFuzzer's runtime (linked whole by `-sanitize=fuzzer`) names this callback; it runs the body
/// that `libFuzzerMain` was given.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzBody?(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Runs libFuzzer (its command line: corpus directories, `-max_total_time=`, crash files to replay)
/// with `body` called once per input.
public func libFuzzerMain(_ argc: Int32, _ argv: CArguments, _ body: @escaping (UnsafeRawBufferPointer) -> Void) -> Int32 {
    fuzzBody = body
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { fuzzTestOneInput($0, $1) }
}

/// A per-process scratch directory on tmpfs (/dev/shm when it exists, else $TMPDIR or /tmp):
/// writing each input to disk, and extracting it, must not be what the fuzzer measures.
public struct FuzzScratch: Sendable {
    public let path: String

    public init(_ name: String) {
        var base = "/dev/shm"
        var st = stat()
        if stat(base, &st) != 0 || (st.st_mode & S_IFMT) != S_IFDIR || access(base, W_OK) != 0 {
            base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        }
        var template = Array("\(base)/udocker-\(name)-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp in \(base) failed (errno \(errno))") }
        path = String(cString: made)
        if scratchFiles.isEmpty { atexit { removeScratch() } }
        scratchFiles.append(path)
    }

    /// The input as a regular file `name` in the scratch directory, opened read-write and rewound.
    public func file(_ name: String, holding bytes: UnsafeRawBufferPointer) -> Int32 {
        let file = "\(path)/\(name)"
        let fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("cannot write the input under \(path) (errno \(errno))") }
        if !scratchFiles.contains(file) { scratchFiles.insert(file, at: 0) }
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            guard n > 0 else { fatalError("cannot write the input under \(path) (errno \(errno))") }
            off += n
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }
}

/// The scratch files, then their directories (what a target leaves besides them, e.g. an extraction
/// root, it removes itself); removed when libFuzzer exits normally. A crash leaves them for replay.
nonisolated(unsafe) private var scratchFiles: [String] = []

private func removeScratch() {
    for p in scratchFiles where unlink(p) != 0 { rmdir(p) }
}
