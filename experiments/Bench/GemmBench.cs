using NativeSparsity.Experiments.Commands;
using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using Spectre.Console;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench gemm`: GFLOP/s of the CPU GEMM on the shapes of BERT-base training at batch 32,
/// sequence 128, with one thread and with all threads. When libopenblas.so.0 loads, cblas_sgemm runs
/// the same shapes on the same buffers in the same run, interleaved with ours repeat by repeat, so
/// the ratio stays meaningful on a machine shared with other work. OpenBLAS is a yardstick only.
/// </summary>
public static unsafe class GemmBench
{
    private sealed record Shape(string Name, bool TransA, bool TransB, int M, int N, int K, int Batch = 1, float Beta = 0f)
    {
        public double Flops => 2.0 * M * N * K * Batch;
        public string Dims => (Batch > 1 ? $"{Batch} x " : "") + $"{M}x{N}x{K} {(TransA ? 'T' : 'N')}{(TransB ? 'T' : 'N')}";
    }

    // Tokens = 32 * 128 = 4096, hidden 768, FFN 3072, 12 heads of 64.
    private static readonly Shape[] Shapes =
    {
        new("fwd attn proj  x W^T", false, true, 4096, 768, 768),
        new("fwd FFN up     x W^T", false, true, 4096, 3072, 768),
        new("fwd FFN down   x W^T", false, true, 4096, 768, 3072),
        new("dX attn proj   dY W", false, false, 4096, 768, 768),
        new("dX FFN up      dY W", false, false, 4096, 768, 3072),
        new("dX FFN down    dY W", false, false, 4096, 3072, 768),
        new("dW attn proj   dY^T X", true, false, 768, 768, 4096, Beta: 1f),
        new("dW FFN up      dY^T X", true, false, 3072, 768, 4096, Beta: 1f),
        new("dW FFN down    dY^T X", true, false, 768, 3072, 4096, Beta: 1f),
        new("attn scores    Q K^T", false, true, 128, 128, 64, Batch: 384),
        new("attn context   P V", false, false, 128, 64, 128, Batch: 384),
        new("square 1024^3", false, false, 1024, 1024, 1024),
    };

    public static Command Build()
    {
        var cmd = new Command("gemm", "GFLOP/s of the CPU GEMM on BERT-base training shapes, against OpenBLAS when libopenblas.so.0 loads");
        var threadsOpt = new Option<int>("--threads") { Description = "threads for the multi-threaded columns (0 = every core)", DefaultValueFactory = _ => 0 }.NonNegative();
        var repeatsOpt = new Option<int>("--repeats") { Description = "timed repeats per shape after one warm-up; the median is reported", DefaultValueFactory = _ => 5 }.Positive();
        var onlyOpt = new Option<string>("--only") { Description = "run only shapes whose name contains this text", DefaultValueFactory = _ => "" };
        var noSingleOpt = new Option<bool>("--no-single") { Description = "skip the one-thread columns" };
        var cpuClockOpt = new Option<bool>("--cpu-clock")
        {
            Description = "time the one-thread columns by the calling thread's CPU time instead of the wall clock (steadier on a shared machine)",
        };
        cmd.Options.Add(threadsOpt);
        cmd.Options.Add(repeatsOpt);
        cmd.Options.Add(onlyOpt);
        cmd.Options.Add(noSingleOpt);
        cmd.Options.Add(cpuClockOpt);
        cmd.SetAction(pr => Run(pr.GetValue(threadsOpt), pr.GetValue(repeatsOpt), pr.GetValue(onlyOpt) ?? "",
                                pr.GetValue(noSingleOpt), pr.GetValue(cpuClockOpt)));
        return cmd;
    }

    private static int Run(int threads, int repeats, string only, bool noSingle, bool cpuClock)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 160;   // keep table rows on one line in logs
        if (threads <= 0) threads = Environment.ProcessorCount;
        var blas = OpenBlas.TryLoad();
        AnsiConsole.MarkupLine($"[bold]CPU[/]: {Markup.Escape(CpuModel())}, {Environment.ProcessorCount} logical cores, " +
                               $"ISA: {(Avx512F.IsSupported ? "AVX-512F " : "")}{(Avx2.IsSupported ? "AVX2 " : "")}{(Fma.IsSupported ? "FMA" : "")}" +
                               $" (Vector512 accelerated: {Vector512.IsHardwareAccelerated})");
        AnsiConsole.MarkupLine(blas == null
            ? "[yellow]libopenblas.so.0 did not load: no OpenBLAS comparison[/]"
            : $"[bold]OpenBLAS[/]: {Markup.Escape(blas.Config)}, core {Markup.Escape(blas.CoreName)}; OPENBLAS_CORETYPE={Markup.Escape(Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") ?? "(unset)")}");
        AnsiConsole.MarkupLine($"GF/s: median of {repeats} repeats after a warm-up, ours and OpenBLAS interleaved; ratio: median of the " +
                               $"per-repeat ratios OpenBLAS time / our time (above 1: ours is faster); threads: 1 and {threads}; " +
                               (cpuClock ? "1-thread columns timed by thread CPU time" : "wall clock"));

        var table = new Table().Border(TableBorder.Markdown);
        table.AddColumn("shape");
        table.AddColumn("m x n x k");
        var threadCounts = noSingle ? new[] { threads } : new[] { 1, threads };
        foreach (int t in threadCounts)
        {
            table.AddColumn(new TableColumn($"ours {t}T GF/s").RightAligned());
            if (blas != null)
            {
                table.AddColumn(new TableColumn($"OpenBLAS {t}T GF/s").RightAligned());
                table.AddColumn(new TableColumn($"ratio {t}T").RightAligned());
            }
        }

        var rng = new Random(1234);
        foreach (var shape in Shapes.Where(s => s.Name.Contains(only, StringComparison.OrdinalIgnoreCase)))
        {
            var row = new List<string> { shape.Name, shape.Dims };
            using var operands = new Operands(shape, rng);
            foreach (int t in threadCounts)
            {
                var cpu = new CpuBackend(threads: t);
                blas?.SetThreads(t);
                var (ours, theirs, ratio) = Measure(shape, operands, cpu, blas, repeats, cpuClock && t == 1);
                row.Add($"{shape.Flops / ours / 1e9:F1}");
                if (blas != null)
                {
                    row.Add($"{shape.Flops / theirs / 1e9:F1}");
                    row.Add($"{ratio:F2}");
                }
            }
            table.AddRow(row.ToArray());
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(string.Join(" | ", row))}[/]");
        }
        AnsiConsole.Write(table);
        return 0;
    }

    /// <summary>
    /// Median seconds per call for ours and OpenBLAS, alternating which goes first, and the median
    /// over repeats of the ratio OpenBLAS time / our time: each ratio compares two calls made back
    /// to back, under the same load from the rest of the machine.
    /// </summary>
    private static (double ours, double theirs, double ratio) Measure(Shape s, Operands o, CpuBackend cpu, OpenBlas? blas, int repeats, bool threadClock)
    {
        Func<Action, double> time = threadClock ? ThreadCpuTime : Time;
        void Ours() => cpu.GemmStridedBatched(s.TransA, s.TransB, s.M, s.N, s.K, 1f, o.A, o.Lda, o.StrideA, o.B, o.Ldb, o.StrideB,
                                               s.Beta, o.C, s.N, (long)s.M * s.N, s.Batch);
        void Theirs()
        {
            float* a = o.A.F32(), b = o.B.F32(), c = o.C.F32();
            for (int i = 0; i < s.Batch; i++)
                blas!.Sgemm(s.TransA, s.TransB, s.M, s.N, s.K, 1f, a + i * o.StrideA, o.Lda, b + i * o.StrideB, o.Ldb,
                            s.Beta, c + (long)i * s.M * s.N, s.N);
        }
        Ours();
        if (blas != null) Theirs();
        var ours = new double[repeats];
        var theirs = new double[repeats];
        for (int r = 0; r < repeats; r++)
        {
            if (blas != null && r % 2 == 1) theirs[r] = time(Theirs);
            ours[r] = time(Ours);
            if (blas != null && r % 2 == 0) theirs[r] = time(Theirs);
        }
        if (blas == null) return (Median(ours), double.NaN, double.NaN);
        return (Median(ours), Median(theirs), Median(theirs.Zip(ours, (x, y) => x / y).ToArray()));
    }

    internal static double Time(Action f)
    {
        var sw = Stopwatch.StartNew();
        f();
        return sw.Elapsed.TotalSeconds;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds; public long Nanoseconds; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>CPU seconds the calling thread spent in f (CLOCK_THREAD_CPUTIME_ID): time lost to other processes does not count.</summary>
    internal static double ThreadCpuTime(Action f)
    {
        const int ThreadCpuClock = 3;
        if (!OperatingSystem.IsLinux()) return Time(f);
        ClockGetTime(ThreadCpuClock, out var t0);
        f();
        ClockGetTime(ThreadCpuClock, out var t1);
        return (t1.Seconds - t0.Seconds) + (t1.Nanoseconds - t0.Nanoseconds) * 1e-9;
    }

    /// <summary>A tensor of count floats, uniform in [-1, 1).</summary>
    internal static Tensor RandomTensor(CpuBackend cpu, Random rng, long count)
    {
        var t = cpu.Allocate(DType.F32, checked((int)count));
        var span = t.F32Span();
        for (int i = 0; i < span.Length; i++) span[i] = (float)(rng.NextDouble() * 2 - 1);
        return t;
    }

    internal static double Median(double[] x)
    {
        var s = x.OrderBy(v => v).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    internal static string CpuModel()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("model name", StringComparison.Ordinal)) return line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return RuntimeInformation.ProcessArchitecture.ToString();
    }

    /// <summary>Operand buffers of one shape, random in [-1, 1), contiguous per matrix.</summary>
    private sealed class Operands : IDisposable
    {
        public Operands(Shape s, Random rng)
        {
            var cpu = new CpuBackend();
            Lda = s.TransA ? s.M : s.K;
            Ldb = s.TransB ? s.K : s.N;
            StrideA = (long)s.M * s.K;
            StrideB = (long)s.K * s.N;
            A = RandomTensor(cpu, rng, StrideA * s.Batch);
            B = RandomTensor(cpu, rng, StrideB * s.Batch);
            C = RandomTensor(cpu, rng, (long)s.M * s.N * s.Batch);
        }

        public Tensor A { get; }
        public Tensor B { get; }
        public Tensor C { get; }
        public int Lda { get; }
        public int Ldb { get; }
        public long StrideA { get; }
        public long StrideB { get; }

        public void Dispose()
        {
            A.Storage.Dispose();
            B.Storage.Dispose();
            C.Storage.Dispose();
        }
    }
}
