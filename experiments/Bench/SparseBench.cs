using NativeSparsity.Experiments.Commands;
using System.CommandLine;
using System.Globalization;
using System.Text;
using NativeSparsity.Engine.Backends.Cpu;
using NativeSparsity.Engine.Tensors;
using NativeSparsity.Experiments.Reporting;
using Spectre.Console;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench sparse`: where a pruned linear layer's forward pass (Y = X W^T, W unstructured
/// sparse, <see cref="CpuBackend.SparseGemm"/>) beats our dense GEMM on the same shapes, and OpenBLAS
/// when libopenblas.so.0 loads. For every shape and token count the dense call and the sparse call
/// at every density run back to back in each repeat (order alternating), so each speed-up is a
/// median of per-repeat ratios, which cancels most of the load of a shared machine.
/// </summary>
public static unsafe class SparseBench
{
    private sealed record Shape(string Model, string Name, int Out, int In);

    private static readonly Shape[] Shapes =
    {
        new("MiniLM", "attn proj", 384, 384), new("MiniLM", "FFN up", 1536, 384), new("MiniLM", "FFN down", 384, 1536),
        new("BERT-base", "attn proj", 768, 768), new("BERT-base", "FFN up", 3072, 768), new("BERT-base", "FFN down", 768, 3072),
    };

    /// <summary>The products of a pruned layer: forward Y = X W^T, input gradient dX = dY W, weight gradient dW = dY^T X at the kept weights.</summary>
    private enum Pass { Forward, Dx, Dw }

    private sealed record Row(Shape Shape, int Tokens, double DenseSeconds, double BlasRatio, double[] SpeedUps)
    {
        public string Label => $"{Shape.Model} {Shape.Name} ({Shape.Out}x{Shape.In}), {Tokens} tokens";
    }

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static Command Build()
    {
        var cmd = new Command("sparse", "Speed-up of the sparse forward kernel (Y = X W^T, W pruned unstructured) over our dense GEMM on MiniLM and " +
                                        "BERT-base shapes, by density and token count; prints the break-even density and writes the curve as PNG and CSV.");
        var threads = new Option<int>("--threads") { Description = "threads for every kernel (0 = every core)", DefaultValueFactory = _ => 1 }.NonNegative();
        var repeats = new Option<int>("--repeats") { Description = "timed repeats after one warm-up; medians are reported", DefaultValueFactory = _ => 5 }.Positive();
        var tokens = new Option<string>("--tokens") { Description = "comma-separated token counts (rows of X)", DefaultValueFactory = _ => "128,512,4096" };
        var densities = new Option<string>("--densities") { Description = "comma-separated densities of W (kept fraction)", DefaultValueFactory = _ => "0.6,0.5,0.4,0.3,0.2,0.1,0.05" };
        var only = new Option<string>("--only") { Description = "run only shapes whose 'model name' contains this text", DefaultValueFactory = _ => "" };
        var pass = new Option<string>("--pass")
        {
            Description = "forward: Y = X W^T (sparse: SparseGemm); dx: dX = dY W (SparseGemm over W^T); dw: dW = dY^T X at the kept weights only (SparseGemmSampled, " +
                          "against the dense dW GEMM with beta 1)",
            DefaultValueFactory = _ => "forward",
        };
        var output = new Option<string>("--out") { Description = "folder for the curve: sparse_speedup[_dx|_dw].png and .csv", DefaultValueFactory = _ => "bench-sparse" };
        foreach (Option o in new Option[] { threads, repeats, tokens, densities, only, pass, output }) cmd.Options.Add(o);
        cmd.SetAction(r => Run(r.GetValue(threads), r.GetValue(repeats), ParseList(r.GetValue(tokens)!, "--tokens", int.Parse),
                               ParseList(r.GetValue(densities)!, "--densities", s => double.Parse(s, Inv)), r.GetValue(only) ?? "",
                               Enum.TryParse<Pass>(r.GetValue(pass), ignoreCase: true, out var p) ? p : throw new ArgumentException($"--pass: '{r.GetValue(pass)}' is not forward, dx or dw"),
                               r.GetValue(output)!));
        return cmd;
    }

    private static T[] ParseList<T>(string text, string option, Func<string, T> parse)
    {
        try { return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(parse).ToArray(); }
        catch (FormatException) { throw new ArgumentException($"{option}: '{text}' is not a comma-separated list of numbers"); }
    }

    private static int Run(int threads, int repeats, int[] tokenCounts, double[] densities, string only, Pass pass, string folder)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 200;
        if (threads <= 0) threads = Environment.ProcessorCount;
        if (tokenCounts.Length == 0 || tokenCounts.Any(t => t < 1)) throw new ArgumentException("--tokens: give positive token counts");
        if (densities.Length == 0 || densities.Any(d => !(d > 0 && d <= 1))) throw new ArgumentException("--densities: give densities in (0, 1]");
        densities = densities.Distinct().OrderByDescending(d => d).ToArray();
        var cpu = new CpuBackend(threads);
        var blas = OpenBlas.TryLoad();
        blas?.SetThreads(threads);
        AnsiConsole.MarkupLine($"[bold]CPU[/]: {Markup.Escape(GemmBench.CpuModel())}, {Environment.ProcessorCount} logical cores; sparse kernel: " +
                               $"{CpuBackend.SparseGemmKernel}; pass {pass} ({Describe(pass)}); {threads} thread{(threads > 1 ? "s" : "")}; median of {repeats} repeats after a warm-up");
        AnsiConsole.MarkupLine(blas == null ? "[yellow]libopenblas.so.0 did not load: no OpenBLAS column[/]" : $"[bold]OpenBLAS[/]: {Markup.Escape(blas.Config)}");
        AnsiConsole.MarkupLine("speed-up = our dense GEMM time / sparse time (median of per-repeat ratios); OpenBLAS = OpenBLAS time / our dense time");

        var table = new Table().Border(TableBorder.Markdown);
        table.AddColumn("shape (out x in), tokens");
        table.AddColumn(new TableColumn("dense ms").RightAligned());
        if (blas != null) table.AddColumn(new TableColumn("OpenBLAS/ours").RightAligned());
        foreach (double d in densities) table.AddColumn(new TableColumn($"{1 - d:P0} sparse").RightAligned());
        table.AddColumn(new TableColumn("break-even sparsity").RightAligned());

        var rng = new Random(1234);
        var rows = new List<Row>();
        foreach (var shape in Shapes.Where(s => $"{s.Model} {s.Name}".Contains(only, StringComparison.OrdinalIgnoreCase)))
            foreach (int t in tokenCounts)
            {
                var row = Measure(cpu, blas, shape, t, densities, repeats, rng, pass);
                rows.Add(row);
                var cells = new List<string> { row.Label, $"{row.DenseSeconds * 1e3:F2}" };
                if (blas != null) cells.Add($"{row.BlasRatio:F2}");
                cells.AddRange(row.SpeedUps.Select(s => $"{s:F2}x"));
                cells.Add(FormatBreakEven(densities, row.SpeedUps));
                table.AddRow(cells.ToArray());
                AnsiConsole.MarkupLine($"[grey]{Markup.Escape(string.Join(" | ", cells))}[/]");
            }
        if (rows.Count == 0) throw new ArgumentException($"--only '{only}' matches no shape");
        AnsiConsole.Write(table);

        // The curve over all shapes: geometric mean of the speed-ups at each density, per token count and overall.
        double[] GeoMean(IEnumerable<Row> rs) => densities.Select((_, i) => Math.Exp(rs.Average(r => Math.Log(r.SpeedUps[i])))).ToArray();
        var overall = GeoMean(rows);
        Console.WriteLine("geometric mean over shapes and token counts: " +
                          string.Join(", ", densities.Select((d, i) => string.Create(Inv, $"{1 - d:P0} sparse {overall[i]:F2}x"))) +
                          $"; break-even sparsity {FormatBreakEven(densities, overall)}");

        Directory.CreateDirectory(folder);
        var series = tokenCounts.Select(t => new Series($"mean over shapes, {t} tokens", densities.Select(d => 1 - d).ToArray(), GeoMean(rows.Where(r => r.Tokens == t))))
            .Concat(rows.Where(r => r.Tokens == tokenCounts.Max()).Select(r => new Series(r.Label, densities.Select(d => 1 - d).ToArray(), r.SpeedUps)))
            .ToList();
        string stem = pass == Pass.Forward ? "sparse_speedup" : $"sparse_speedup_{pass.ToString().ToLowerInvariant()}";
        string png = Path.Combine(folder, stem + ".png");
        Plots.Lines(png, $"Sparse {Describe(pass)} vs our dense GEMM ({threads} thread{(threads > 1 ? "s" : "")})", "sparsity of W", "speed-up over dense (x)",
                    series, band: (0, 1, "slower than dense"), percentX: true);
        var csv = new StringBuilder("model,shape,out,in,tokens,dense_seconds,openblas_over_ours," + string.Join(",", densities.Select(d => string.Create(Inv, $"speedup_density_{d}"))) + ",break_even_sparsity\n");
        foreach (var r in rows)
            csv.Append(string.Join(",", new[] { r.Shape.Model, r.Shape.Name, r.Shape.Out.ToString(Inv), r.Shape.In.ToString(Inv), r.Tokens.ToString(Inv),
                r.DenseSeconds.ToString("R", Inv), r.BlasRatio.ToString("R", Inv) }.Concat(r.SpeedUps.Select(s => s.ToString("R", Inv)))
                .Append(BreakEvenSparsity(densities, r.SpeedUps).ToString("R", Inv)))).Append('\n');
        File.WriteAllText(Path.Combine(folder, stem + ".csv"), csv.ToString());
        Console.WriteLine($"curve: {png}, {Path.Combine(folder, stem + ".csv")}");
        return 0;
    }

    private static string Describe(Pass pass) => pass switch
    {
        Pass.Forward => "forward Y = X W^T",
        Pass.Dx => "input gradient dX = dY W",
        _ => "weight gradient dW = dY^T X at kept weights",
    };

    private static Row Measure(CpuBackend cpu, OpenBlas? blas, Shape s, int tokens, double[] densities, int repeats, Random rng, Pass pass)
    {
        var x = GemmBench.RandomTensor(cpu, rng, tokens * s.In);      // X, or dX for the dx pass
        var w = GemmBench.RandomTensor(cpu, rng, s.Out * s.In);       // W, or dW for the dw pass
        var y = GemmBench.RandomTensor(cpu, rng, tokens * s.Out);     // Y, or dY
        var dense = w.F32Span().ToArray();
        var sparse = densities.Select(d =>
        {
            var pruned = (float[])dense.Clone();
            var mask = new Random(rng.Next());
            for (int i = 0; i < pruned.Length; i++) if (mask.NextDouble() >= d) pruned[i] = 0f;
            var m = SparseRowMatrix.FromDense(pruned, s.Out, s.In);
            return pass == Pass.Dx ? m.Transpose() : m;
        }).ToArray();
        try
        {
            // dW accumulates (beta 1) as gradients do; its values drift over repeats, which does not change the work.
            Action denseCall = pass switch
            {
                Pass.Forward => () => cpu.Gemm(false, true, tokens, s.Out, s.In, 1f, x, s.In, w, s.In, 0f, y, s.Out),
                Pass.Dx => () => cpu.Gemm(false, false, tokens, s.In, s.Out, 1f, y, s.Out, w, s.In, 0f, x, s.In),
                _ => () => cpu.Gemm(true, false, s.Out, s.In, tokens, 1f, y, s.Out, x, s.In, 1f, w, s.In),
            };
            Action Blas() => pass switch
            {
                Pass.Forward => () => blas!.Sgemm(false, true, tokens, s.Out, s.In, 1f, x.F32(), s.In, w.F32(), s.In, 0f, y.F32(), s.Out),
                Pass.Dx => () => blas!.Sgemm(false, false, tokens, s.In, s.Out, 1f, y.F32(), s.Out, w.F32(), s.In, 0f, x.F32(), s.In),
                _ => () => blas!.Sgemm(true, false, s.Out, s.In, tokens, 1f, y.F32(), s.Out, x.F32(), s.In, 1f, w.F32(), s.In),
            };
            Action Sparse(SparseRowMatrix m) => pass switch
            {
                Pass.Forward => () => cpu.SparseGemm(tokens, x, s.In, m, 0f, y, s.Out),
                Pass.Dx => () => cpu.SparseGemm(tokens, y, s.Out, m, 0f, x, s.In),
                _ => () => cpu.SparseGemmSampled(tokens, y, s.Out, x, s.In, m, 1f, w, s.In),
            };
            var calls = new List<Action> { denseCall };
            if (blas != null) calls.Add(Blas());
            calls.AddRange(sparse.Select(Sparse));
            foreach (var c in calls) c();   // warm-up: JIT, buffers, caches
            var times = new double[calls.Count][];
            for (int i = 0; i < calls.Count; i++) times[i] = new double[repeats];
            for (int r = 0; r < repeats; r++)
                for (int k = 0; k < calls.Count; k++)
                {
                    int i = r % 2 == 0 ? k : calls.Count - 1 - k;
                    times[i][r] = GemmBench.Time(calls[i]);
                }
            double Ratio(double[] num, double[] den) => GemmBench.Median(num.Zip(den, (a, b) => a / b).ToArray());
            int first = blas != null ? 2 : 1;
            return new Row(s, tokens, GemmBench.Median(times[0]), blas != null ? Ratio(times[1], times[0]) : double.NaN,
                           densities.Select((_, i) => Ratio(times[0], times[first + i])).ToArray());
        }
        finally
        {
            x.Storage.Dispose();
            w.Storage.Dispose();
            y.Storage.Dispose();
        }
    }

    /// <summary>
    /// The sparsity from which on the sparse kernel is faster: past the last density (from dense to
    /// sparse) where it is slower, interpolated linearly in density to where the speed-up reaches 1.
    /// NaN when it is faster everywhere or nowhere (see <see cref="FormatBreakEven"/>).
    /// </summary>
    internal static double BreakEvenSparsity(double[] densities, double[] speedUps)
    {
        int slower = Array.FindLastIndex(speedUps, s => s < 1);
        if (slower < 0 || slower == speedUps.Length - 1) return double.NaN;
        double a = speedUps[slower] - 1, b = speedUps[slower + 1] - 1;
        return 1 - (densities[slower] + (densities[slower + 1] - densities[slower]) * (a / (a - b)));
    }

    private static string FormatBreakEven(double[] densities, double[] speedUps)
    {
        if (speedUps.All(s => s >= 1)) return $"<= {1 - densities[0]:P0}";
        if (speedUps[^1] < 1) return $"> {1 - densities[^1]:P0}";
        return $"{BreakEvenSparsity(densities, speedUps):P0}";
    }
}
