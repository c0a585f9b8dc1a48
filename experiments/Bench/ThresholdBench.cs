using NativeSparsity.Experiments.Commands;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Random;
using NativeSparsity.Engine.Sparsity;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench threshold`: the exact global magnitude threshold by radix select and by the
/// sampled single-pass select against Array.Sort of a copy of |w| and a quickselect on a copy, on
/// random-normal weights of bert-base's prunable size and ten times that; plus the nine-level
/// sweep and the keep-mask write (one read and one write pass, the floor to compare with).
/// </summary>
public static class ThresholdBench
{
    private const long BertBasePrunable = 84_934_656;

    public static Command Build()
    {
        var cmd = new Command("threshold", "Global magnitude threshold: sampled select vs radix select vs Array.Sort vs quickselect, beside the keep-mask pass.");
        var n = new Option<long>("--n") { Description = "Weights in the span (bert-base prunes 84,934,656).", DefaultValueFactory = _ => BertBasePrunable }.Positive();
        var repeats = new Option<int>("--repeats") { Description = "Timed repeats of the radix select and sweep (median reported).", DefaultValueFactory = _ => 5 }.Positive();
        var sortRepeats = new Option<int>("--sort-repeats") { Description = "Timed repeats of the sort and quickselect baselines.", DefaultValueFactory = _ => 3 }.Positive();
        var large = new Option<bool>("--large") { Description = "Also run 10x the size if memory allows.", DefaultValueFactory = _ => true };
        var threads = new Option<int>("--threads") { Description = "CPU threads (0 = all).", DefaultValueFactory = _ => 0 }.NonNegative();
        var device = new Option<string>("--device") { Description = "cpu, or cuda[:N] to time the selection on the GPU (CUDA events) against its copy bandwidth.", DefaultValueFactory = _ => "cpu" };
        foreach (var o in new Option[] { n, repeats, sortRepeats, large, threads, device }) cmd.Options.Add(o);
        cmd.SetAction(parse =>
        {
            string deviceName = parse.GetValue(device)!;
            if (deviceName.StartsWith("cuda", StringComparison.Ordinal))
                return ThresholdBenchCuda.Run(deviceName, parse.GetValue(n), Math.Max(1, parse.GetValue(repeats)), parse.GetValue(large), parse.GetValue(threads));
            using var cpu = new CpuBackend(parse.GetValue(threads));
            long size = parse.GetValue(n);
            int r = Math.Max(1, parse.GetValue(repeats)), sr = Math.Max(1, parse.GetValue(sortRepeats));
            Console.WriteLine($"# threshold bench on {cpu.Name}, {Environment.ProcessorCount} logical CPUs, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            Console.WriteLine();
            Console.WriteLine("| n | method | median ms | CPU ms | GB/s of weights | vs Array.Sort | repeats | check |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            Run(cpu, size, r, sr);
            if (parse.GetValue(large))
            {
                long big = 10 * size;
                // The span plus a float[] copy of |w| for the baselines, and some room.
                long need = 2 * big * 4 + (1L << 30);
                long available = AvailableBytes();
                if (available < need)
                    Console.WriteLine($"\n(skipped n = {big:N0}: needs about {need / 1e9:F1} GB, {available / 1e9:F1} GB available)");
                else
                    Run(cpu, big, r, Math.Min(sr, 1));
            }
            return 0;
        });
        return cmd;
    }

    private static unsafe void Run(CpuBackend cpu, long n, int repeats, int sortRepeats)
    {
        var span = cpu.Allocate(DType.F32, checked((int)n));
        FillNormal(span.F32(), n, seed: 20240601, std: 0.04f);
        // Lay the span out like stacked bert-base encoders when it divides, else as one matrix.
        var layout = n % 7_077_888 == 0
            ? PrunableSet.BertEncoderLayout((int)(n / 7_077_888), 768, 3072)
            : new[] { new PrunableMatrix("bench.weight", 0, 1, (int)n) };
        var set = new PrunableSet(span, layout);
        const double s = 0.5;
        long k = GlobalMagnitudeThreshold.PruneCount(s, n);
        double gb = n * 4 / 1e9;

        const ThresholdSelection Radix = ThresholdSelection.Radix, Sampled = ThresholdSelection.Sampled;
        var sweepLevels = GlobalMagnitudeThreshold.DefaultSweep;
        // JIT warm-up: a few calls each so that the timed ones run fully optimised code.
        for (int warm = 0; warm < 3; warm++)
        {
            GlobalMagnitudeThreshold.Compute(set, s, Radix);
            GlobalMagnitudeThreshold.Compute(set, s, Sampled);
            GlobalMagnitudeThreshold.Sweep(set, sweepLevels, Sampled);
        }
        var radix = Time(repeats, () => GlobalMagnitudeThreshold.Compute(set, s, Radix), out var t);
        var sweep = Time(repeats, () => GlobalMagnitudeThreshold.Sweep(set, sweepLevels, Radix), out var levels);
        var sampled = Time(repeats, () => GlobalMagnitudeThreshold.Compute(set, s, Sampled), out var ts);
        var sampledSweep = Time(repeats, () => GlobalMagnitudeThreshold.Sweep(set, sweepLevels, Sampled), out var levelsSampled);
        var keep = cpu.Allocate(DType.U8, checked((int)n));
        var write = Time(repeats, () => { GlobalMagnitudeThreshold.WriteKeepMask(set, t, keep); return 0; }, out _);

        float[] copy = new float[n];
        float* w = span.F32();
        void CopyAbs()
        {
            fixed (float* c = copy)
            {
                float* cc = c;
                CpuParallel.ForRange(n, 1 << 20, (a, b) => { for (long i = a; i < b; i++) cc[i] = MathF.Abs(w[i]); });
            }
        }
        var sort = Time(sortRepeats, () => { CopyAbs(); Array.Sort(copy); return copy[k - 1]; }, out float sorted);
        float[] sortedLevels = levels.Select(l => copy[Math.Max(l.Pruned, 1) - 1]).ToArray();
        var quick = Time(sortRepeats, () => { CopyAbs(); return QuickSelect(copy, k - 1); }, out float quickValue);

        string ok = t.Threshold == sorted && quickValue == sorted ? "= sort" : $"MISMATCH radix {t.Threshold:R} sort {sorted:R} quick {quickValue:R}";
        bool sweepOk = levels.Select(l => l.Threshold).SequenceEqual(sortedLevels);
        Row(n, "Array.Sort of a copy of abs(w) (1 thread)", sort, gb, sort, sortRepeats, "reference");
        Row(n, "quickselect on a copy of abs(w) (1 thread)", quick, gb, sort, sortRepeats, quickValue == sorted ? "= sort" : "MISMATCH");
        Row(n, "radix select 11+11+9 bits, 50% (3 passes)", radix, gb, sort, repeats, ok);
        Row(n, "sweep 10%..90% (9 levels, 3 passes)", sweep, gb, sort, repeats, sweepOk ? "= sort at all 9" : "MISMATCH");
        Row(n, "sampled select, 50% (1 pass + candidates)", sampled, gb, sort, repeats, ts == t ? "= radix" : "MISMATCH");
        Row(n, "sampled sweep 10%..90% (9 levels, 1 pass)", sampledSweep, gb, sort, repeats, levelsSampled.SequenceEqual(levels) ? "= radix at all 9" : "MISMATCH");
        Row(n, "keep-mask write for 50%", write, gb, sort, repeats, $"{k:N0} pruned");
        GC.KeepAlive(keep);
        span.Storage.Dispose();
        keep.Storage.Dispose();
    }

    private static void Row(long n, string method, (double Wall, double Cpu) ms, double gb, (double Wall, double Cpu) sortMs, int repeats, string check) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {n:N0} | {method} | {ms.Wall:F1} | {ms.Cpu:F1} | {gb / (ms.Wall / 1000):F2} | {sortMs.Wall / ms.Wall:F1}x | {repeats} | {check} |"));

    /// <summary>
    /// Median wall time and median process CPU time in ms of <paramref name="repeats"/> runs (CPU
    /// time shows the work done when other jobs share the cores); the last result comes out.
    /// </summary>
    private static (double Wall, double Cpu) Time<T>(int repeats, Func<T> body, out T result)
    {
        var wall = new double[repeats];
        var cpu = new double[repeats];
        var process = Process.GetCurrentProcess();
        result = default!;
        for (int i = 0; i < repeats; i++)
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            result = body();
            wall[i] = sw.Elapsed.TotalMilliseconds;
            process.Refresh();
            cpu[i] = (process.TotalProcessorTime - cpu0).TotalMilliseconds;
        }
        return (Median(wall), Median(cpu));
    }

    private static double Median(double[] x)
    {
        Array.Sort(x);
        int r = x.Length;
        return r % 2 == 1 ? x[r / 2] : (x[r / 2 - 1] + x[r / 2]) / 2;
    }

    /// <summary>Wirth's selection (Hoare partition, median of three): the k-th smallest (0-based), reordering a.</summary>
    private static float QuickSelect(float[] a, long k)
    {
        long lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            long mid = lo + (hi - lo) / 2;
            float x = Median(a[lo], a[mid], a[hi]);
            long i = lo, j = hi;
            do
            {
                while (a[i] < x) i++;
                while (x < a[j]) j--;
                if (i <= j) { (a[i], a[j]) = (a[j], a[i]); i++; j--; }
            } while (i <= j);
            if (j < k) lo = i;
            if (k < i) hi = j;
        }
        return a[k];
    }

    private static float Median(float a, float b, float c) => Math.Max(Math.Min(a, b), Math.Min(Math.Max(a, b), c));

    internal static unsafe void FillNormal(float* w, long n, ulong seed, float std)
    {
        CpuParallel.ForRange(n, 1 << 20, (start, end) =>
        {
            for (long i = start; i < end; i += 4)
            {
                var (a, b, c, d) = Philox.Words(seed, 0, (ulong)i >> 2);
                float* o = w + i;
                long left = end - i;
                o[0] = std * Philox.BoxMuller(a, b, false);
                if (left > 1) o[1] = std * Philox.BoxMuller(a, b, true);
                if (left > 2) o[2] = std * Philox.BoxMuller(c, d, false);
                if (left > 3) o[3] = std * Philox.BoxMuller(c, d, true);
            }
        });
    }

    internal static long AvailableBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}

/// <summary>
/// `nsparse bench threshold --device cuda`: the radix select of kernels/radixselect.cu timed with
/// CUDA events (median), against the ideal of reading the span once per pass (3 × n × 4 bytes) at
/// the device's copy bandwidth measured in the same run the way `bench kernels` measures it (a
/// 1 GiB device-to-device copy, read + write bytes over time). Every result is checked against the
/// CPU radix select on the same weights: thresholds, counts and the mask bytes.
/// </summary>
internal static class ThresholdBenchCuda
{
    private const int Passes = 3;

    internal static int Run(string deviceName, long n, int repeats, bool large, int threads)
    {
        IBackend backend;
        try { backend = BackendFactory.Create(deviceName, out string description); Console.WriteLine($"# threshold bench on {description}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC"); }
        catch (Exception e) { Console.Error.WriteLine($"bench threshold: {e.Message}"); return 2; }
        using var _ = backend;
        if (backend is not CudaBackend gpu) { Console.Error.WriteLine($"bench threshold: --device {deviceName} is not a CUDA device"); return 2; }
        using var cpu = new CpuBackend(threads);

        long copyElems = 256L << 20;
        var a = gpu.Allocate(DType.F32, (int)copyElems);
        var b = gpu.Allocate(DType.F32, (int)copyElems);
        double copyMs = Median(gpu, repeats, () => gpu.Copy(a, b));
        double bandwidth = 2.0 * copyElems * 4 / (copyMs * 1e-3);
        a.Storage.Dispose(); b.Storage.Dispose();
        Console.WriteLine($"copy ceiling: {bandwidth / 1e9:F0} GB/s (1 GiB device-to-device, read + write)");
        Console.WriteLine();
        Console.WriteLine("| n | method | median ms (CUDA events) | GB/s of weights read | ideal ms at copy bandwidth | of ideal | repeats | check vs CPU |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        RunSize(gpu, cpu, n, repeats, bandwidth);
        if (large)
        {
            long big = 10 * n;
            long need = big * 5 + (1L << 30);
            if (big > int.MaxValue || need > gpu.TotalMemory || 2 * big * 4 > ThresholdBench.AvailableBytes())
                Console.WriteLine($"\n(skipped n = {big:N0}: needs about {need / 1e9:F1} GB on the device and {2 * big * 4 / 1e9:F1} GB on the host)");
            else
                RunSize(gpu, cpu, big, repeats, bandwidth);
        }
        return 0;
    }

    private static unsafe void RunSize(CudaBackend gpu, CpuBackend cpu, long n, int repeats, double bandwidth)
    {
        var hostSpan = cpu.Allocate(DType.F32, checked((int)n));
        ThresholdBench.FillNormal(hostSpan.F32(), n, seed: 20240601, std: 0.04f);
        var deviceSpan = gpu.Allocate(DType.F32, checked((int)n));
        gpu.CopyFromHost<float>(hostSpan.F32Span(), deviceSpan);
        PrunableMatrix[] layout = [new("bench.weight", 0, 1, (int)n)];
        var cpuSet = new PrunableSet(hostSpan, layout);
        var gpuSet = new PrunableSet(deviceSpan, layout);
        const double s = 0.5;
        double gb = n * 4 / 1e9;

        MagnitudeThreshold t = default;
        MagnitudeThreshold[] levels = [];
        double select = Median(gpu, repeats, () => t = GlobalMagnitudeThreshold.Compute(gpuSet, s));
        double sweep = Median(gpu, repeats, () => levels = GlobalMagnitudeThreshold.Sweep(gpuSet, GlobalMagnitudeThreshold.DefaultSweep));
        var keep = gpu.Allocate(DType.U8, checked((int)n));
        double write = Median(gpu, repeats, () => GlobalMagnitudeThreshold.WriteKeepMask(gpuSet, t, keep));

        var cpuT = GlobalMagnitudeThreshold.Compute(cpuSet, s);
        var cpuLevels = GlobalMagnitudeThreshold.Sweep(cpuSet, GlobalMagnitudeThreshold.DefaultSweep);
        var cpuKeep = cpu.Allocate(DType.U8, checked((int)n));
        GlobalMagnitudeThreshold.WriteKeepMask(cpuSet, cpuT, cpuKeep);
        var down = new byte[n];
        gpu.CopyToHost<byte>(keep, down);
        bool maskSame = down.AsSpan().SequenceEqual(cpuKeep.U8Span());

        double ideal = Passes * gb / (bandwidth / 1e9) * 1000;
        // The mask write reads the span once (twice for a partial tie) and writes one byte per weight.
        double idealWrite = (gb + n / 1e9) / (bandwidth / 1e9) * 1000;
        Row(n, "radix select 11+11+9 bits, 50% (3 passes)", select, Passes * gb, ideal, repeats, t == cpuT ? "= CPU" : $"MISMATCH gpu {t} cpu {cpuT}");
        Row(n, "sweep 10%..90% (9 levels, 3 passes)", sweep, Passes * gb, ideal, repeats, levels.SequenceEqual(cpuLevels) ? "= CPU at all 9" : "MISMATCH");
        Row(n, "keep-mask write for 50%", write, gb, idealWrite, repeats, maskSame ? "mask = CPU" : "MASK MISMATCH");
        hostSpan.Storage.Dispose(); cpuKeep.Storage.Dispose();
        deviceSpan.Storage.Dispose(); keep.Storage.Dispose();
    }

    private static void Row(long n, string method, double ms, double gbRead, double idealMs, int repeats, string check) =>
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {n:N0} | {method} | {ms:F3} | {gbRead / (ms / 1000):F0} | {idealMs:F3} | {ms / idealMs:F2}x | {repeats} | {check} |"));

    /// <summary>Median GPU time (CUDA events on the backend's stream) of repeats runs after two warm-ups (kernel compilation, allocator).</summary>
    private static double Median(CudaBackend gpu, int repeats, Action work)
    {
        work(); work();
        gpu.Synchronize();
        var times = new double[repeats];
        for (int i = 0; i < repeats; i++) times[i] = gpu.ElapsedMilliseconds(work);
        Array.Sort(times);
        return repeats % 2 == 1 ? times[repeats / 2] : (times[repeats / 2 - 1] + times[repeats / 2]) / 2;
    }
}
