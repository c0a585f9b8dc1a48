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

    private FolderLock(string folder, FileStream stream) { Folder = folder; _stream = stream; }

    public string Folder { get; }

    /// <summary>Takes the folder's lock (creating the folder), or throws <see cref="FolderLockedException"/> naming the holder.</summary>
    public static FolderLock Acquire(string folder, string command) =>
        TryAcquire(folder, command) ?? throw new FolderLockedException(
            $"{Path.GetFullPath(folder)} is in use by another nsparse process ({DescribeHolder(folder)}); wait for it to finish or use another folder");

    /// <summary>
    /// Waits until the lock is free, then takes it: for shared artefacts (a cached corpus or model)
    /// that two studies may want at once; the second waits and then finds the work done.
    /// </summary>
    public static FolderLock AcquireWaiting(string folder, string command, Action<string>? say = null, TimeSpan? pollEvery = null)
    {
        bool told = false;
        while (true)
        {
            if (TryAcquire(folder, command) is { } held) return held;
            if (!told) { say?.Invoke($"waiting for {Path.GetFullPath(folder)}: in use by {DescribeHolder(folder)}"); told = true; }
            Thread.Sleep(pollEvery ?? TimeSpan.FromMilliseconds(250));
        }
    }

    public static FolderLock? TryAcquire(string folder, string command)
    {
        Directory.CreateDirectory(folder);
        FileStream stream;
        try
        {
            stream = new FileStream(Path.Combine(folder, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (File.Exists(Path.Combine(folder, LockFile)))
        {
            return null;
        }
        var holder = string.Create(CultureInfo.InvariantCulture,
            $"pid {Environment.ProcessId}, command '{command}', started {Process.GetCurrentProcess().StartTime.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC");
        AtomicFile.Write(Path.Combine(folder, HolderFile), fs => fs.Write(System.Text.Encoding.UTF8.GetBytes(holder + "\n")));
        return new FolderLock(folder, stream);
    }

    /// <summary>What the holder file says, or that it cannot be read.</summary>
    public static string DescribeHolder(string folder)
    {
        try { return File.ReadAllText(Path.Combine(folder, HolderFile)).Trim(); }
        catch (IOException) { return "holder unknown"; }
        catch (UnauthorizedAccessException) { return "holder unknown"; }
    }

    public void Dispose()
    {
        if (_stream == null) return;
        try { File.Delete(Path.Combine(Folder, HolderFile)); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _stream.Dispose();
        _stream = null;
    }
}
