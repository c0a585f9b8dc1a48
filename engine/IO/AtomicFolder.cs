namespace NativeSparsity.Engine.IO;

/// <summary>
/// Writes a folder (a checkpoint) so that the final name only ever holds a complete folder: it is
/// built in a sibling "NAME.tmp-&lt;random&gt;", then renamed into place. An existing folder is first
/// renamed aside to "NAME.old-&lt;random&gt;" and deleted once the new one is in place. A crash can
/// leave the target missing with an ".old-" sibling beside it, never a half-written target;
/// <see cref="Recover"/> puts such a sibling back and removes stale temporary folders.
/// </summary>
public static class AtomicFolder
{
    public static void Write(string target, Action<string> build)
    {
        ArgumentNullException.ThrowIfNull(build);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        string parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{target}' has no parent folder", nameof(target));
        Directory.CreateDirectory(parent);
        if (File.Exists(full)) throw new IOException($"cannot write folder '{full}': a file of that name exists");

        string temp = $"{full}.tmp-{Guid.NewGuid():N}";
        Directory.CreateDirectory(temp);
        try
        {
            build(temp);
            FlushFiles(temp);
        }
        catch
        {
            TryDeleteFolder(temp);
            throw;
        }

        string? aside = null;
        if (Directory.Exists(full))
        {
            aside = $"{full}.old-{Guid.NewGuid():N}";
            Directory.Move(full, aside);
        }
        try
        {
            Directory.Move(temp, full);
        }
        catch
        {
            if (aside != null && !Directory.Exists(full)) Directory.Move(aside, full);
            TryDeleteFolder(temp);
            throw;
        }
        if (aside != null) TryDeleteFolder(aside);
    }

    /// <summary>
    /// Cleans up after a crash during <see cref="Write"/>: when the target is missing and a renamed-aside
    /// ".old-" copy exists, it becomes the target again; leftover ".tmp-" folders are deleted.
    /// Returns true when it restored a folder.
    /// </summary>
    public static bool Recover(string target)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(target));
        string parent = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(parent)) return false;
        string name = Path.GetFileName(full);
        bool restored = false;
        foreach (string old in Directory.GetDirectories(parent, name + ".old-*").Order(StringComparer.Ordinal))
        {
            if (!Directory.Exists(full)) { Directory.Move(old, full); restored = true; }
            else TryDeleteFolder(old);
        }
        foreach (string tmp in Directory.GetDirectories(parent, name + ".tmp-*")) TryDeleteFolder(tmp);
        return restored;
    }

    // The rename is only as durable as the files it publishes.
    private static void FlushFiles(string folder)
    {
        foreach (string file in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories))
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            stream.Flush(flushToDisk: true);
        }
    }

    private static void TryDeleteFolder(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
