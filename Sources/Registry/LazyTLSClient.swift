import AsyncHTTPClient
import NIOSSL
import Synchronization
import UDockerSystem

/// The client for `https://` URLs when extra certificate authorities are configured
/// (`SSL_CERT_FILE`, `SSL_CERT_DIR`): made on the first https request, so a command that only
/// talks plain HTTP (a loopback or `http://` registry) never reads and parses the certificates —
/// with the usual `SSL_CERT_DIR=/etc/ssl/certs` that is ~280 PEM files and ~20 ms of CPU.
final class LazyTLSClient: Sendable {
    private let configuration: HTTPClient.Configuration
    private let environment: [String: String]
    private let state = Mutex<HTTPClient?>(nil)

    init(configuration: HTTPClient.Configuration, environment: [String: String]) {
        self.configuration = configuration
        self.environment = environment
    }

    /// Whether the environment names extra authorities at all (else the plain client does https).
    static func wanted(_ environment: [String: String]) -> Bool {
        !(environment["SSL_CERT_FILE"] ?? "").isEmpty || !(environment["SSL_CERT_DIR"] ?? "").isEmpty
    }

    var client: HTTPClient {
        state.withLock { made in
            if let made { return made }
            let c = HTTPClient(eventLoopGroupProvider: .singleton, configuration: Self.withExtraRoots(configuration, environment))
            made = c
            return c
        }
    }

    /// The client if one was made (for shutdown).
    var existing: HTTPClient? { state.withLock { $0 } }

    /// `configuration` trusting the extra authorities too; unreadable ones are skipped with a debug line.
    static func withExtraRoots(_ configuration: HTTPClient.Configuration, _ environment: [String: String]) -> HTTPClient.Configuration {
        var config = configuration
        let extra = ExtraTrustRoots.load(environment: environment)
        for p in extra.problems { Output().debug("ignoring CA \(p)") }
        if !extra.certificates.isEmpty {
            config.tlsConfiguration?.additionalTrustRoots.append(.certificates(extra.certificates))
        }
        return config
    }
}
