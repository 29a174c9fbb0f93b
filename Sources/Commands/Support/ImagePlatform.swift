import FoundationEssentials
import OCI

enum ImagePlatform {
    static func describe(configBytes: [UInt8]) -> String? {
        guard let c = try? JSONDecoder().decode(ImageConfig.self, from: Data(configBytes)), let arch = c.architecture else { return nil }
        let os = c.os ?? "linux"
        return c.variant.map { "\(os)/\(arch)/\($0)" } ?? "\(os)/\(arch)"
    }
}
