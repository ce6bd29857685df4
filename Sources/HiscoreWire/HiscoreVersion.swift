/// The release of this build: what `hiscored --version` and `hiscore --version` print and what
/// the server announces in its hello (`ServerHello.server_version`).
public enum HiscoreVersion {
    public static let current = "0.1.0"
}
