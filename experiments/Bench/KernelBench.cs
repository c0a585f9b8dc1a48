using NativeSparsity.Experiments.Commands;
using System.CommandLine;
using System.Diagnostics;
using NativeSparsity.Engine.Backends;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Experiments.Bench;

/// <summary>
/// `nsparse bench kernels`: times every op once per kernel on BERT-base shapes (hidden 768, 12 heads,
/// FFN 3072, vocabulary 30522) and prints achieved GB/s or TFLOP/s against ceilings measured in the
/// same run: a device-to-device copy for bandwidth and a large GEMM for arithmetic. On a GPU each
/// launch is timed with CUDA events; the figure is the median over the iterations after a warm-up.
/// </summary>
public static class KernelBench
{
    private const int Hidden = 768, Heads = 12, HeadDim = 64, Ffn = 3072, Vocab = 30522;

    public static Command Build()
    {
        var cmd = new Command("kernels", "Time each kernel (CUDA events, median) against measured bandwidth and GEMM ceilings.");
        var device = new Option<string>("--device") { Description = BackendFactory.DeviceOptionHelp, DefaultValueFactory = _ => "cuda" };
        var batch = new Option<int>("--batch") { Description = "sequences per step", DefaultValueFactory = _ => 32 }.Positive();
        var seq = new Option<int>("--seq") { Description = "tokens per sequence", DefaultValueFactory = _ => 128 }.Positive();
        var parameters = new Option<int>("--params") { Description = "length of the flat parameter buffer for AdamW and norms", DefaultValueFactory = _ => 110_000_000 }.Positive();
        var iterations = new Option<int>("--iterations") { Description = "timed runs per kernel (after 5 warm-up runs)", DefaultValueFactory = _ => 50 }.Positive();
        cmd.Options.Add(device); cmd.Options.Add(batch); cmd.Options.Add(seq); cmd.Options.Add(parameters); cmd.Options.Add(iterations);
        cmd.SetAction(r => Run(r.GetValue(device)!, r.GetValue(batch), r.GetValue(seq), r.GetValue(parameters), r.GetValue(iterations)));
        return cmd;
    }

    private sealed record Row(string Name, string Shape, double MedianMs, double Bytes, double Flops);

    private static int Run(string deviceName, int batch, int seq, int paramCount, int iterations)
    {
        IBackend backend;
        try { backend = BackendFactory.Create(deviceName, out string description); Console.WriteLine($"device: {description}"); }
        catch (Exception e) { Console.Error.WriteLine($"bench kernels: {e.Message}"); return 2; }
        using var _ = backend;
        iterations = Math.Max(iterations, 1);

        double Time(Action work)
        {
            for (int i = 0; i < 5; i++) work();
            backend.Synchronize();
            var times = new double[iterations];
            for (int i = 0; i < iterations; i++)
            {
                if (backend is CudaBackend gpu) times[i] = gpu.ElapsedMilliseconds(work);
                else
                {
                    var sw = Stopwatch.StartNew();
                    work();
                    backend.Synchronize();
                    times[i] = sw.Elapsed.TotalMilliseconds;
                }
            }
            Array.Sort(times);
            return times[iterations / 2];
        }

        var rows = new List<Row>();
        void Measure(string name, string shape, double bytes, double flops, Action work)
        {
            try { rows.Add(new Row(name, shape, Time(work), bytes, flops)); }
            catch (NotImplementedException e) { Console.WriteLine($"{name}: skipped ({e.Message})"); }
        }

        int tokens = batch * seq, mlmRows = Math.Max(1, tokens * 15 / 100);
        var rng = new System.Random(1);
        Tensor Rand(params int[] shape)
        {
            var t = backend.Allocate(DType.F32, shape);
            var host = new float[t.Length];
            for (int i = 0; i < host.Length; i++) host[i] = (float)(rng.NextDouble() * 2 - 1);
            backend.CopyFromHost<float>(host, t);
            return t;
        }

        // ---- ceilings ----
        bool gpu = backend is CudaBackend;
        long copyElems = gpu ? 256L << 20 : 16L << 20;   // 1 GiB of floats on a GPU
        var big = backend.Allocate(DType.F32, (int)copyElems);
        var big2 = backend.Allocate(DType.F32, (int)copyElems);
        double copyMs = Time(() => backend.Copy(big, big2));
        double bandwidth = 2.0 * copyElems * 4 / (copyMs * 1e-3);
        big.Storage.Dispose(); big2.Storage.Dispose();
        int G = gpu ? 8192 : 1024;
        var ga = Rand(G, G); var gb = Rand(G, G); var gc = backend.Allocate(DType.F32, G, G);
        double flopsCeiling = double.NaN;
        try
        {
            double gemmMs = Time(() => backend.Gemm(false, false, G, G, G, 1f, ga, G, gb, G, 0f, gc, G));
            flopsCeiling = 2.0 * G * G * G / (gemmMs * 1e-3);
        }
        catch (NotImplementedException e) { Console.WriteLine($"GEMM ceiling skipped ({e.Message})"); }
        ga.Storage.Dispose(); gb.Storage.Dispose(); gc.Storage.Dispose();
        Console.WriteLine($"ceilings: copy {bandwidth / 1e9:F0} GB/s (read + write), GEMM {G}^3 {flopsCeiling / 1e12:F1} TFLOP/s"
                          + (backend is CudaBackend { StrictFp32: false } ? " (TF32)" : ""));

        // ---- activations of one BERT-base step ----
        var x = Rand(tokens, Hidden); var x2 = Rand(tokens, Hidden); var y = Rand(tokens, Hidden);
        var w = Rand(3 * Hidden, Hidden); var qkv = Rand(tokens, 3 * Hidden);
        var w1 = Rand(Ffn, Hidden); var h = Rand(tokens, Ffn); var h2 = Rand(tokens, Ffn);
        var bias = Rand(Ffn); var gamma = Rand(Hidden); var beta = Rand(Hidden);
        var mean = Rand(tokens); var rstd = Rand(tokens);
        var q = Rand(batch, Heads, seq, HeadDim); var k = Rand(batch, Heads, seq, HeadDim); var v = Rand(batch, Heads, seq, HeadDim);
        var scores = Rand(batch, Heads, seq, seq); var scores2 = Rand(batch, Heads, seq, seq);
        var keyMask = backend.Allocate(DType.F32, batch, seq);
        var table = Rand(Vocab, Hidden); var dtable = Rand(Vocab, Hidden);
        var ids = backend.Allocate(DType.I32, tokens);
        var idHost = new int[tokens];
        for (int i = 0; i < tokens; i++) idHost[i] = rng.Next(Vocab);
        backend.CopyFromHost<int>(idHost, ids);
        var logits = Rand(mlmRows, Vocab); var dlogits = Rand(mlmRows, Vocab);
        var targets = backend.Allocate(DType.I32, mlmRows);
        var targetHost = new int[mlmRows];
        for (int i = 0; i < mlmRows; i++) targetHost[i] = rng.Next(Vocab);
        backend.CopyFromHost<int>(targetHost, targets);
        var losses = backend.Allocate(DType.F32, mlmRows);
        var scalar = backend.Allocate(DType.F32, 1);

        string tk = $"{tokens}x{Hidden}", tf = $"{tokens}x{Ffn}";
        double nH = (double)tokens * Hidden, nF = (double)tokens * Ffn, nS = (double)batch * Heads * seq * seq;

        Measure("gemm qkv", $"{tokens}x{3 * Hidden}x{Hidden}", 0, 2.0 * tokens * 3 * Hidden * Hidden,
            () => backend.Gemm(false, true, tokens, 3 * Hidden, Hidden, 1f, x, Hidden, w, Hidden, 0f, qkv, 3 * Hidden));
        Measure("gemm ffn up", $"{tokens}x{Ffn}x{Hidden}", 0, 2.0 * tokens * Ffn * Hidden,
            () => backend.Gemm(false, true, tokens, Ffn, Hidden, 1f, x, Hidden, w1, Hidden, 0f, h, Ffn));
        Measure("gemm batched scores", $"{batch * Heads}x{seq}x{seq}x{HeadDim}", 0, 2.0 * batch * Heads * seq * seq * HeadDim,
            () => backend.GemmStridedBatched(false, true, seq, seq, HeadDim, 0.125f, q, HeadDim, (long)seq * HeadDim,
                k, HeadDim, (long)seq * HeadDim, 0f, scores, seq, (long)seq * seq, batch * Heads));
        Measure("add_bias", tf, 8 * nF, 0, () => backend.AddBias(h, bias, tokens, Ffn));
        Measure("bias_grad", tf, 4 * nF, 0, () => backend.BiasGradient(h, bias, tokens, Ffn));
        Measure("gelu_forward", tf, 8 * nF, 0, () => backend.GeluForward(h, h2));
        Measure("gelu_backward", tf, 12 * nF, 0, () => backend.GeluBackward(h, h2, h2));
        Measure("layernorm_forward", tk, 8 * nH, 0, () => backend.LayerNormForward(x, gamma, beta, y, mean, rstd, tokens, Hidden, 1e-12f));
        Measure("add_layernorm_forward", tk, 16 * nH, 0,
            () => backend.AddLayerNormForward(x, x2, qkv.Slice(0, tokens, Hidden), gamma, beta, y, mean, rstd, tokens, Hidden, 1e-12f));
        Measure("layernorm_backward", tk, 20 * nH, 0,
            () => backend.LayerNormBackward(y, x, gamma, mean, rstd, x2, gamma, beta, tokens, Hidden));
        Measure("split_qkv_heads", $"{tokens}x3x{Hidden}", 24 * nH, 0, () => backend.SplitQkvHeads(qkv, q, k, v, batch, seq, Heads, HeadDim));
        Measure("merge_heads", tk, 8 * nH, 0, () => backend.MergeHeads(q, y, batch, seq, Heads, HeadDim));
        Measure("attention_softmax_fwd", $"{batch}x{Heads}x{seq}x{seq}", 8 * nS, 0,
            () => backend.AttentionSoftmaxForward(scores, keyMask, scores2, 0.125f, batch, Heads, seq, seq));
        Measure("attention_softmax_bwd", $"{batch}x{Heads}x{seq}x{seq}", 12 * nS, 0,
            () => backend.AttentionSoftmaxBackward(scores2, scores, scores, 0.125f, batch * Heads * seq, seq));
        Measure("embedding_forward", tk, 12 * nH, 0, () => backend.EmbeddingForward(ids, table, y, tokens, Hidden, accumulate: true));
        Measure("embedding_backward", tk, 12 * nH, 0, () => backend.EmbeddingBackward(ids, y, dtable, tokens, Hidden));
        // Worst case of the ordered embedding gradient: every token has token type 0, so one warp per column block sums them all.
        var typeIds = backend.Allocate(DType.I32, tokens); var dtypes = Rand(2, Hidden);
        Measure("embedding_bwd (1 hot id)", tk, 8 * nH, 0, () => backend.EmbeddingBackward(typeIds, y, dtypes, tokens, Hidden));
        Measure("dropout", tk, 8 * nH, 0, () => backend.DropoutForward(x, y, 0.1f, 42, 1, 0));
        Measure("crossentropy_forward", $"{mlmRows}x{Vocab}", 4.0 * mlmRows * Vocab, 0,
            () => backend.CrossEntropyForward(logits, targets, losses, mlmRows, Vocab, -100));
        Measure("crossentropy_backward", $"{mlmRows}x{Vocab}", 8.0 * mlmRows * Vocab, 0,
            () => backend.CrossEntropyBackward(logits, targets, dlogits, mlmRows, Vocab, -100, 1f / mlmRows));
        Measure("add", tk, 12 * nH, 0, () => backend.Add(x, x2, y));

        // ---- the flat parameter buffer ----
        var param = Rand(paramCount); var grad = Rand(paramCount);
        var m = backend.Allocate(DType.F32, paramCount); var vv = backend.Allocate(DType.F32, paramCount);
        var mask = backend.Allocate(DType.U8, paramCount);
        double nP = paramCount;
        Measure("sum_of_squares", $"{paramCount}", 4 * nP, 0, () => backend.SumOfSquares(grad, scalar));
        Measure("axpy", $"{paramCount}", 12 * nP, 0, () => backend.Axpy(0.5f, grad, m));
        Measure("apply_mask", $"{paramCount}", 9 * nP, 0, () => backend.ApplyMask(grad, mask));
        var adam = new AdamWParameters(1e-4f, 0.9f, 0.999f, 1e-6f, 0.01f, 10, 1f);
        Measure("adamw (masked, clipped)", $"{paramCount}", 29 * nP, 0, () => backend.AdamW(param, grad, m, vv, mask, scalar, adam));

        Console.WriteLine();
        Console.WriteLine($"{"kernel",-24} {"shape",-22} {"median ms",10} {"achieved",14} {"of ceiling",10}");
        foreach (var r in rows)
        {
            string achieved, share;
            if (r.Flops > 0)
            {
                double f = r.Flops / (r.MedianMs * 1e-3);
                achieved = $"{f / 1e12:F1} TFLOP/s"; share = $"{100 * f / flopsCeiling:F0} %";
            }
            else
            {
                double b = r.Bytes / (r.MedianMs * 1e-3);
                achieved = $"{b / 1e9:F0} GB/s"; share = $"{100 * b / bandwidth:F0} %";
            }
            Console.WriteLine($"{r.Name,-24} {r.Shape,-22} {r.MedianMs,10:F4} {achieved,14} {share,10}");
        }
        Console.WriteLine($"(bytes counted as the minimum each op must read and write; {iterations} timed runs after 5 warm-up runs)");
        return 0;
    }
}
