using System.Diagnostics;
using System.Globalization;

namespace NativeSparsity.Engine.IO;

/// <summary>Thrown when another live process holds a folder's lock.</summary>
public sealed class FolderLockedException(string message) : IOException(message);

/// <summary>
/// One writer per folder: an exclusive OS lock on FOLDER/.nsparse.lock, held for the writer's whole
/// run and released by the operating system when the process ends, so a crash never leaves a stale
/// lock. (.NET takes FileShare.None as an exclusive advisory flock on Unix and as a share-mode lock on
/// Windows.) Who holds it (pid, command, start time) is written beside it in .nsparse.lock.holder, for
/// the refusal message; that file is information only, the OS lock is the truth.
/// </summary>
public sealed class FolderLock : IDisposable
{
    public const string LockFile = ".nsparse.lock";
    public const string HolderFile = ".nsparse.lock.holder";

    private FileStream? _stream;
    private readonly string _holderPath;

    private FolderLock(string folder, string holderPath, FileStream stream) { Folder = folder; _holderPath = holderPath; _stream = stream; }

    public string Folder { get; }

    /// <summary>Takes the folder's lock (creating the folder), or throws <see cref="FolderLockedException"/> naming the holder.</summary>
    public static FolderLock Acquire(string folder, string command) => AcquireAt(Inside(folder), command);

    /// <summary>
    /// The lock of a folder that is replaced whole (<see cref="AtomicFolder.Write"/>: import, compress, a
    /// converted model): a lock file inside would be renamed away with the old folder, so it sits beside
    /// it as PARENT/.NAME.nsparse.lock (and .holder); the folder itself is not created.
    /// </summary>
    public static FolderLock AcquireReplaced(string target, string command) => AcquireAt(Beside(target), command);

    /// <summary>
    /// Waits until the lock is free, then takes it: for shared artefacts (a cached corpus or model)
    /// that two studies may want at once; the second waits and then finds the work done.
    /// </summary>
    public static FolderLock AcquireWaiting(string folder, string command, Action<string>? say = null, TimeSpan? pollEvery = null) =>
        AcquireWaitingAt(Inside(folder), command, say, pollEvery);

    /// <summary><see cref="AcquireWaiting"/> for a folder replaced whole (see <see cref="AcquireReplaced"/>).</summary>
    public static FolderLock AcquireReplacedWaiting(string target, string command, Action<string>? say = null, TimeSpan? pollEvery = null) =>
        AcquireWaitingAt(Beside(target), command, say, pollEvery);

    public static FolderLock? TryAcquire(string folder, string command) => TryAcquireAt(Inside(folder), command);

    public static FolderLock? TryAcquireReplaced(string target, string command) => TryAcquireAt(Beside(target), command);

    /// <summary>What the holder file of a folder's own lock says, or that it cannot be read.</summary>
    public static string DescribeHolder(string folder) => DescribeHolderAt(Inside(folder));

    /// <summary>Where a lock lives: the folder it guards (for messages), the directory to create, the lock and holder files.</summary>
    private readonly record struct Site(string Folder, string Directory, string LockPath, string HolderPath);

    private static Site Inside(string folder) =>
        new(Path.GetFullPath(folder), folder, Path.Combine(folder, LockFile), Path.Combine(folder, HolderFile));

    private static Site Beside(string target)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{target}' has no parent folder");
        string name = "." + Path.GetFileName(full);
        return new(full, parent, Path.Combine(parent, name + LockFile), Path.Combine(parent, name + HolderFile));
    }

    private static FolderLock AcquireAt(Site site, string command) =>
        TryAcquireAt(site, command) ?? throw new FolderLockedException(
            $"{site.Folder} is in use by another nsparse process ({DescribeHolderAt(site)}); wait for it to finish or use another folder");

    private static FolderLock AcquireWaitingAt(Site site, string command, Action<string>? say, TimeSpan? pollEvery)
    {
        bool told = false;
        while (true)
        {
            if (TryAcquireAt(site, command) is { } held) return held;
            if (!told) { say?.Invoke($"waiting for {site.Folder}: in use by {DescribeHolderAt(site)}"); told = true; }
            Thread.Sleep(pollEvery ?? TimeSpan.FromMilliseconds(250));
        }
    }

    private static FolderLock? TryAcquireAt(Site site, string command)
    {
        Directory.CreateDirectory(site.Directory);
        FileStream stream;
        try
        {
            stream = new FileStream(site.LockPath, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(site.LockPath))
        {
            return null;
        }
        var holder = string.Create(CultureInfo.InvariantCulture,
            $"pid {Environment.ProcessId}, command '{command}', started {Process.GetCurrentProcess().StartTime.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC");
        AtomicFile.Write(site.HolderPath, fs => fs.Write(System.Text.Encoding.UTF8.GetBytes(holder + "\n")));
        return new FolderLock(site.Folder, site.HolderPath, stream);
    }

    private static string DescribeHolderAt(Site site)
    {
        try { return File.ReadAllText(site.HolderPath).Trim(); }
        catch (IOException) { return "holder unknown"; }
        catch (UnauthorizedAccessException) { return "holder unknown"; }
    }

    public void Dispose()
    {
        if (_stream == null) return;
        try { File.Delete(_holderPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _stream.Dispose();
        _stream = null;
    }
}
