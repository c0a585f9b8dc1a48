namespace NativeSparsity.Engine.Backends.Cpu;

/// <summary>
/// Work splitting for the CPU backend. Chunk boundaries depend only on the problem size, never on
/// the thread count or on scheduling, so reductions that combine per-chunk partials in chunk order
/// give bitwise identical results on any machine and any number of threads.
/// </summary>
public static class CpuParallel
{
    /// <summary>Number of worker threads ops may use; set once by the backend.</summary>
    public static int MaxThreads { get; set; } = Environment.ProcessorCount;

    /// <summary>Runs body(chunk) for chunk in [0, chunks), in parallel when there is enough work.</summary>
    public static void For(int chunks, Action<int> body, long workPerChunk = long.MaxValue)
    {
        if (chunks <= 0) return;
        int threads = Math.Min(MaxThreads, chunks);
        // Tiny problems are cheaper on the calling thread than through the pool.
        if (threads <= 1 || (workPerChunk != long.MaxValue && workPerChunk * chunks < 16_384))
        {
            for (int c = 0; c < chunks; c++) body(c);
            return;
        }
        Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }

    /// <summary>Splits [0, length) into fixed chunks of <paramref name="chunkSize"/> and runs body(start, end) on each.</summary>
    public static void ForRange(long length, int chunkSize, Action<long, long> body)
    {
        if (length <= 0) return;
        int chunks = checked((int)((length + chunkSize - 1) / chunkSize));
        For(chunks, c =>
        {
            long start = (long)c * chunkSize;
            body(start, Math.Min(length, start + chunkSize));
        }, chunkSize);
    }

    /// <summary>Splits rows [0, rows) into chunks so each holds about <paramref name="targetWork"/> units of work.</summary>
    public static void ForRows(int rows, long workPerRow, Action<int, int> body, long targetWork = 32_768)
    {
        if (rows <= 0) return;
        int rowsPerChunk = (int)Math.Clamp(targetWork / Math.Max(workPerRow, 1), 1, rows);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        For(chunks, c =>
        {
            int start = c * rowsPerChunk;
            body(start, Math.Min(rows, start + rowsPerChunk));
        }, rowsPerChunk * workPerRow);
    }
}
