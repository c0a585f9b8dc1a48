namespace NativeSparsity.Engine.IO;

/// <summary>
/// Writes a file so that readers only ever see the old contents or the complete new ones: the data
/// goes to a temporary file in the same folder (same file system, so the rename is atomic), is
/// flushed to disk, then renamed over the target. A failure deletes the temporary file.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, Action<FileStream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string folder = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' has no parent folder", nameof(path));
        Directory.CreateDirectory(folder);
        string temp = TempName(full);
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>"path.tmp-&lt;random&gt;" beside the target.</summary>
    public static string TempName(string fullPath) => $"{fullPath}.tmp-{Guid.NewGuid():N}";

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
