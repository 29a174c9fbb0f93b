import UDockerSystem

/// A one-line extraction error, e.g. `layer sha256:…: truncated tar archive`: the project's
/// `UDockerError`, whose context names the layer (`layer <file name>`) when known.
public typealias ArchiveError = UDockerError

extension UDockerError {
    public init(_ kind: Kind, _ message: String, layer: String?) {
        self.init(kind, message, context: layer.map(Self.layerContext))
    }

    /// The context naming a layer (file name, e.g. `sha256:…`).
    static func layerContext(_ name: String) -> String { "layer \(name)" }

    /// Anything thrown while extracting a layer, as an extraction error of that layer.
    init(wrapping error: any Error, layer: String) {
        self.init(wrapping: error, context: Self.layerContext(layer))
    }

    /// A failed syscall on the current `errno`, e.g. `open /x: No such file or directory`.
    static func io(_ operation: String, _ path: String? = nil) -> UDockerError {
        UDockerError(SystemError(operation, path: path))
    }
}

/// Printable form of raw name bytes (for messages only; never used to build paths): control
/// characters as `\xNN` (`Format.printable`).
func printable(_ bytes: [UInt8]) -> String {
    Format.printable(String(decoding: bytes.prefix(4096), as: UTF8.self))
}
