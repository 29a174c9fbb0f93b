import UDockerSystem
/// udocker's container start banner (`_run_banner`), printed on stderr at info level.
enum Banner {
    static func text(containerID: String, executable: String, fill: Character) -> String {
        let line = String(repeating: fill, count: 78)
        let empty = "\(fill)" + String(repeating: " ", count: 74) + "\(fill)"
        let title = "STARTING \(containerID)"
        let pad = max(0, 74 - title.count)
        let left = pad / 2, right = pad - left
        let centred = "\(fill)" + String(repeating: " ", count: left) + title + String(repeating: " ", count: right) + "\(fill)"
        return Format.joined([line, empty, centred, empty, line, "executing: \(PathName.basename(executable))"], separator: "\n") + "\n"
    }
}
