import FoundationEssentials
import NIOSSL
import UDockerSystem

/// Certificate authorities trusted besides the system store: `SSL_CERT_FILE` (a PEM bundle) and
/// every certificate file of the `SSL_CERT_DIR` directories (`:`-separated; OpenSSL's hashed
/// `<hash>.<n>` names, or `*.pem` / `*.crt`). Loaded here, file by file, because the TLS library
/// only takes single files as extra roots (a directory there fails every handshake).
enum ExtraTrustRoots {
    static func load(environment: [String: String]) -> (certificates: [NIOSSLCertificate], problems: [String]) {
        var files: [String] = []
        if let f = environment["SSL_CERT_FILE"], !f.isEmpty { files.append(f) }
        for dir in (environment["SSL_CERT_DIR"] ?? "").split(separator: ":").map(String.init) where !dir.isEmpty {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
            files += names.filter(isCertificateName).map { "\(dir)/\($0)" }
        }
        var seen = Set<String>()
        var certificates: [NIOSSLCertificate] = []
        var problems: [String] = []
        for path in files {
            let real = FileInfo.realPath(path) ?? path
            guard seen.insert(real).inserted else { continue }
            guard FileInfo.exists(real), !FileInfo.isDirectory(real) else {
                problems.append("\(path): not a certificate file"); continue
            }
            do { certificates += try NIOSSLCertificate.fromPEMFile(real) } catch {
                problems.append("\(path): no PEM certificate could be read")
            }
        }
        return (certificates, problems)
    }

    /// `5ad8a5d6.0` (c_rehash), `site-ca.pem`, `site-ca.crt`.
    static func isCertificateName(_ name: String) -> Bool {
        if name.hasSuffix(".pem") || name.hasSuffix(".crt") { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 2 && parts[0].count == 8 && parts[0].allSatisfy(\.isHexDigit)
            && !parts[1].isEmpty && parts[1].allSatisfy(\.isNumber)
    }
}
