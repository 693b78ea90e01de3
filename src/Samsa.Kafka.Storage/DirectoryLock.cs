namespace Samsa.Kafka.Storage;

/// <summary>An exclusive lock on a directory, held through a lock file inside it for as long as the
/// returned stream is open. The lock is the kernel's (.NET takes flock(LOCK_EX) for FileShare.None),
/// so it is refused to another process and to a second holder in this one, and a killed process's
/// lock goes with it.</summary>
public static class DirectoryLock
{
    /// <exception cref="DirectoryInUseException">Another holder has the lock.</exception>
    public static FileStream Acquire(string dir, string lockFileName, string holder = "broker", string hint = "stop that broker or choose another log.dirs")
    {
        string path = Path.Combine(dir, lockFileName);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            throw new DirectoryInUseException(dir, $"{dir} is in use by another {holder} (could not lock {path}): {hint}", e);
        }
    }
}

/// <summary>A directory is locked by another holder (see <see cref="DirectoryLock"/>).</summary>
public sealed class DirectoryInUseException(string dir, string message, Exception inner) : IOException(message, inner)
{
    public string Directory { get; } = dir;
}
