// libFuzzer target: the archive reader (gzip/zstd/plain detection, tar headers, PAX, GNU long
// names) and the safe extractor, on arbitrary bytes. Built only by scripts/fuzz.sh (UDOCKER_FUZZ=1).
import Archive
import FuzzSupport
import UDockerSystem
#if canImport(Glibc)
import Glibc
#endif

let scratch = FuzzScratch("fuzz-tar")
let root = "\(scratch.path)/root"

/// The extractor as a layer is applied, on the calling thread: no decompressing thread and no writer
/// pool per input (starting three threads per input made the target ~100× slower), small buffers.
let extractOptions: ExtractOptions = {
    var o = ExtractOptions()
    o.pipelined = false
    o.writerThreads = 0
    o.bufferSize = 1 << 16
    o.inputBufferSize = 1 << 16
    o.umask = 0o022
    return o
}()

func fuzzTar(_ input: UnsafeRawBufferPointer) {
    let fd = scratch.file("input", holding: input)
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
    // Extraction into a fresh root on tmpfs (small inputs only: a compressed bomb fills memory).
    guard input.count <= 1 << 16 else { return }
    lseek(fd, 0, SEEK_SET)
    mkdir(root, 0o700)
    if let x = try? LayerExtractor(root: root, options: extractOptions) { _ = try? x.extract(fileDescriptor: fd, layerName: "fuzz") }
    try? FileTree.remove(root)
}

@_cdecl("FuzzTar_main")
public func fuzzTarMain(_ argc: Int32, _ argv: CArguments) -> Int32 { libFuzzerMain(argc, argv, fuzzTar) }
