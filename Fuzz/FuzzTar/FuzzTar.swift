// libFuzzer target: the archive reader (gzip/zstd/plain detection, tar headers, PAX, GNU long
// names) and the safe extractor, on arbitrary bytes. Built only by `make fuzz` (UDOCKER_FUZZ=1).
import Archive
import Foundation
import System
#if canImport(Glibc)
import Glibc
#endif

/// The bytes as a file descriptor (a scratch file, rewound; memfd_create is not in Glibc's Swift module).
func memoryFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let fd = open("\(scratch)/input", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    var off = 0
    while off < size { let n = write(fd, data + off, size - off); if n <= 0 { break }; off += n }
    lseek(fd, 0, SEEK_SET)
    return fd
}

let scratch: String = {
    var t = Array("/tmp/udocker-fuzz-tar-XXXXXX".utf8CString)
    return String(cString: mkdtemp(&t)!)
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTar(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = memoryFile(data, size)
    defer { close(fd) }
    if let reader = try? ArchiveReader(fileDescriptor: fd) {
        var members = 0
        while members < 10_000, let m = try? reader.next() {
            members += 1
            if (try? reader.readData { _ in }) == nil { break }
            _ = m.name
        }
        _ = try? reader.finish()
    }
    // Extraction into a fresh root (small inputs only: it touches the filesystem).
    guard size <= 1 << 16 else { return 0 }
    let root = "\(scratch)/root"
    mkdir(root, 0o700)
    let layer = "\(scratch)/layer"
    if let data = Optional(Data(bytes: data, count: size)) { FileManager.default.createFile(atPath: layer, contents: data) }
    if let x = try? LayerExtractor(root: root, options: ExtractOptions()) { _ = try? x.extract(layerAt: layer) }
    try? FileTree.remove(root)
    return 0
}

// SwiftPM links a debug executable with `main = FuzzTar_main` (testable executables); this entry
// point hands over to libFuzzer's driver (C ABI; plain pointer arguments).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt
) -> CInt

@_cdecl("FuzzTar_main")
public func FuzzTarMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc, v = argv
    return LLVMFuzzerRunDriver(&c, &v, { fuzzTar($0, $1) })
}
