using NativeSparsity.Engine.Backends.Cuda.Native;
using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends.Cuda;

// The IBackend ops, grouped by kernel file. Each checks its tensors like the CPU backend, then queues
// kernels; launch shapes that a kernel relies on are stated beside the kernel in kernels/*.cu.
public sealed unsafe partial class CudaBackend
{
    private const uint WarpRowsPerBlock = 8;   // kernels with one warp per row run 256 threads = 8 rows
    private const int RowsPerChunk = 128;      // rows per deterministic column-sum partial

    private void Elementwise(string file, string kernel, long n, params ReadOnlySpan<Arg> args)
    {
        if (n == 0) return;
        Launch(file, kernel, (GridFor((n + 3) / 4), 1), (256, 1), args);
    }

    private static void SameLength(Tensor a, Tensor b, string nameA, string nameB)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"{nameB}: {b} holds {b.Length} elements, {nameA} holds {a.Length}; they must match");
    }

    // ---- gemm (cuBLAS) -----------------------------------------------------------------------

    public void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, Tensor b, int ldb,
                     float beta, Tensor c, int ldc) =>
        GemmStridedBatched(transA, transB, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);

    public void GemmStridedBatched(bool transA, bool transB, int m, int n, int k, float alpha, Tensor a, int lda, long strideA,
                                   Tensor b, int ldb, long strideB, float beta, Tensor c, int ldc, long strideC, int batch)
    {
        MakeCurrent();
        if (m < 0 || n < 0 || k < 0 || batch < 0) throw new ArgumentException($"gemm: negative size m={m} n={n} k={k} batch={batch}");
        Expect(a, DType.F32, nameof(a)); Expect(b, DType.F32, nameof(b)); Expect(c, DType.F32, nameof(c));
        int aRows = transA ? k : m, aCols = transA ? m : k, bRows = transB ? n : k, bCols = transB ? k : n;
        if (lda < Math.Max(1, aCols)) throw new ArgumentException($"lda = {lda} is less than A's row length {aCols}");
        if (ldb < Math.Max(1, bCols)) throw new ArgumentException($"ldb = {ldb} is less than B's row length {bCols}");
        if (ldc < Math.Max(1, n)) throw new ArgumentException($"ldc = {ldc} is less than C's row length {n}");
        if (m == 0 || n == 0 || batch == 0) return;
        long last = batch - 1;
        if (aRows > 0) ExpectLength(a, last * strideA + (long)(aRows - 1) * lda + aCols, nameof(a));
        if (bRows > 0) ExpectLength(b, last * strideB + (long)(bRows - 1) * ldb + bCols, nameof(b));
        ExpectLength(c, last * strideC + (long)(m - 1) * ldc + n, nameof(c));
        if (k == 0)
        {
            // cuBLAS would scale C by beta; the contract says beta = 0 ignores C (NaN included), so do that explicitly.
            for (int i = 0; i < batch; i++)
            {
                var ci = c.Slice(i * strideC, (int)((long)(m - 1) * ldc + n));
                if (beta == 0f) Fill(ci, 0f);
                else if (beta != 1f) Scale(ci, beta);
            }
            return;
        }

        // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap operands, m and n.
        var opA = transB ? CublasOperation.T : CublasOperation.N;
        var opB = transA ? CublasOperation.T : CublasOperation.N;
        var compute = StrictFp32 ? CublasComputeType.F32 : CublasComputeType.F32FastTf32;
        float al = alpha, be = beta;
        if (batch == 1)
            Cublas.Check(Cublas.cublasGemmEx(_cublas, opA, opB, n, m, k, &al, Ptr(b), CudaDataType.R32F, ldb,
                Ptr(a), CudaDataType.R32F, lda, &be, Ptr(c), CudaDataType.R32F, ldc, compute, Cublas.GemmDefaultAlgorithm));
        else
            Cublas.Check(Cublas.cublasGemmStridedBatchedEx(_cublas, opA, opB, n, m, k, &al, Ptr(b), CudaDataType.R32F, ldb, strideB,
                Ptr(a), CudaDataType.R32F, lda, strideA, &be, Ptr(c), CudaDataType.R32F, ldc, strideC,
                batch, compute, Cublas.GemmDefaultAlgorithm));
    }

    // ---- bias.cu ------------------------------------------------------------------------------

    public void AddBias(Tensor y, Tensor bias, int rows, int cols)
    {
        MakeCurrent();
        Expect(y, DType.F32, nameof(y)); Expect(bias, DType.F32, nameof(bias));
        ExpectLength(y, (long)rows * cols, nameof(y)); ExpectLength(bias, cols, nameof(bias));
        Elementwise("bias.cu", "add_bias_f32", (long)rows * cols, Arg.Ptr(Ptr(y)), Arg.Ptr(Ptr(bias)), Arg.I32(rows), Arg.I32(cols));
    }

    public void BiasGradient(Tensor dy, Tensor dbias, int rows, int cols)
    {
        MakeCurrent();
        Expect(dy, DType.F32, nameof(dy)); Expect(dbias, DType.F32, nameof(dbias));
        ExpectLength(dy, (long)rows * cols, nameof(dy)); ExpectLength(dbias, cols, nameof(dbias));
        if (rows == 0 || cols == 0) return;
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var partial = Scratch((long)chunks * cols * 4, out long reserved);
        Launch("bias.cu", "bias_grad_partial_f32", ((uint)((cols + 31) / 32), (uint)chunks), (32, 8),
            Arg.Ptr(Ptr(dy)), Arg.Ptr(partial), Arg.I32(rows), Arg.I32(cols), Arg.I32(RowsPerChunk));
        ColumnSumAccumulate(partial, Ptr(dbias), chunks, cols);
        _allocator.Free(partial, reserved);
    }

    private void ColumnSumAccumulate(CuDevicePtr partial, CuDevicePtr output, int chunks, int cols) =>
        Launch("reduction.cu", "column_sum_accumulate_f32", (GridFor(cols), 1), (256, 1),
            Arg.Ptr(partial), Arg.Ptr(output), Arg.I32(chunks), Arg.I32(cols));

    // ---- gelu.cu ------------------------------------------------------------------------------

    public void GeluForward(Tensor x, Tensor y)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(y, DType.F32, nameof(y)); SameLength(x, y, nameof(x), nameof(y));
        Elementwise("gelu.cu", "gelu_forward_f32", x.Length, Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(y)), Arg.I64(x.Length));
    }

    public void GeluBackward(Tensor x, Tensor dy, Tensor dx)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(dy, DType.F32, nameof(dy)); Expect(dx, DType.F32, nameof(dx));
        SameLength(x, dy, nameof(x), nameof(dy)); SameLength(x, dx, nameof(x), nameof(dx));
        Elementwise("gelu.cu", "gelu_backward_f32", x.Length, Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(dy)), Arg.Ptr(Ptr(dx)), Arg.I64(x.Length));
    }

    // ---- tanh.cu ------------------------------------------------------------------------------

    public void TanhForward(Tensor x, Tensor y)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(y, DType.F32, nameof(y)); SameLength(x, y, nameof(x), nameof(y));
        Elementwise("tanh.cu", "tanh_forward_f32", x.Length, Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(y)), Arg.I64(x.Length));
    }

    public void TanhBackward(Tensor y, Tensor dy, Tensor dx)
    {
        MakeCurrent();
        Expect(y, DType.F32, nameof(y)); Expect(dy, DType.F32, nameof(dy)); Expect(dx, DType.F32, nameof(dx));
        SameLength(y, dy, nameof(y), nameof(dy)); SameLength(y, dx, nameof(y), nameof(dx));
        Elementwise("tanh.cu", "tanh_backward_f32", y.Length, Arg.Ptr(Ptr(y)), Arg.Ptr(Ptr(dy)), Arg.Ptr(Ptr(dx)), Arg.I64(y.Length));
    }

    // ---- layernorm.cu -------------------------------------------------------------------------

    private void CheckLayerNorm(Tensor x, Tensor gamma, Tensor y, Tensor mean, Tensor rstd, int rows, int cols, string xName)
    {
        foreach (var (t, name) in new[] { (x, xName), (gamma, "gamma"), (y, "y"), (mean, "mean"), (rstd, "rstd") })
            Expect(t, DType.F32, name);
        ExpectLength(x, (long)rows * cols, xName); ExpectLength(y, (long)rows * cols, "y");
        ExpectLength(gamma, cols, "gamma"); ExpectLength(mean, rows, "mean"); ExpectLength(rstd, rows, "rstd");
        if (cols <= 0 && rows > 0) throw new ArgumentException($"LayerNorm needs cols > 0, got {cols}");
    }

    private uint WarpRowGrid(long rows) => (uint)((rows + WarpRowsPerBlock - 1) / WarpRowsPerBlock);

    public void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd, int rows, int cols, float eps)
    {
        MakeCurrent();
        CheckLayerNorm(x, gamma, y, mean, rstd, rows, cols, nameof(x));
        Expect(beta, DType.F32, nameof(beta)); ExpectLength(beta, cols, nameof(beta));
        if (rows == 0) return;
        Launch("layernorm.cu", "layernorm_forward_f32", (WarpRowGrid(rows), 1), (256, 1),
            Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(gamma)), Arg.Ptr(Ptr(beta)), Arg.Ptr(Ptr(y)), Arg.Ptr(Ptr(mean)), Arg.Ptr(Ptr(rstd)),
            Arg.I32(rows), Arg.I32(cols), Arg.F32(eps));
    }

    public void AddLayerNormForward(Tensor a, Tensor b, Tensor sum, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd,
                                    int rows, int cols, float eps)
    {
        MakeCurrent();
        CheckLayerNorm(sum, gamma, y, mean, rstd, rows, cols, nameof(sum));
        Expect(a, DType.F32, nameof(a)); Expect(b, DType.F32, nameof(b)); Expect(beta, DType.F32, nameof(beta));
        ExpectLength(a, (long)rows * cols, nameof(a)); ExpectLength(b, (long)rows * cols, nameof(b)); ExpectLength(beta, cols, nameof(beta));
        if (rows == 0) return;
        Launch("layernorm.cu", "add_layernorm_forward_f32", (WarpRowGrid(rows), 1), (256, 1),
            Arg.Ptr(Ptr(a)), Arg.Ptr(Ptr(b)), Arg.Ptr(Ptr(sum)), Arg.Ptr(Ptr(gamma)), Arg.Ptr(Ptr(beta)), Arg.Ptr(Ptr(y)),
            Arg.Ptr(Ptr(mean)), Arg.Ptr(Ptr(rstd)), Arg.I32(rows), Arg.I32(cols), Arg.F32(eps));
    }

    public void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx, Tensor dgamma, Tensor dbeta,
                                  int rows, int cols)
    {
        MakeCurrent();
        CheckLayerNorm(x, gamma, dx, mean, rstd, rows, cols, nameof(x));
        foreach (var (t, name) in new[] { (dy, nameof(dy)), (dgamma, nameof(dgamma)), (dbeta, nameof(dbeta)) }) Expect(t, DType.F32, name);
        ExpectLength(dy, (long)rows * cols, nameof(dy)); ExpectLength(dgamma, cols, nameof(dgamma)); ExpectLength(dbeta, cols, nameof(dbeta));
        if (rows == 0) return;
        // Parameter gradients first: dx may alias dy.
        int chunks = (rows + RowsPerChunk - 1) / RowsPerChunk;
        var partial = Scratch(2L * chunks * cols * 4, out long reserved);
        var partialBeta = partial + (long)chunks * cols * 4;
        Launch("layernorm.cu", "layernorm_param_grad_partial_f32", ((uint)((cols + 31) / 32), (uint)chunks), (32, 8),
            Arg.Ptr(Ptr(dy)), Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(mean)), Arg.Ptr(Ptr(rstd)), Arg.Ptr(partial), Arg.Ptr(partialBeta),
            Arg.I32(rows), Arg.I32(cols), Arg.I32(RowsPerChunk));
        ColumnSumAccumulate(partial, Ptr(dgamma), chunks, cols);
        ColumnSumAccumulate(partialBeta, Ptr(dbeta), chunks, cols);
        _allocator.Free(partial, reserved);
        Launch("layernorm.cu", "layernorm_backward_dx_f32", (WarpRowGrid(rows), 1), (256, 1),
            Arg.Ptr(Ptr(dy)), Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(gamma)), Arg.Ptr(Ptr(mean)), Arg.Ptr(Ptr(rstd)), Arg.Ptr(Ptr(dx)),
            Arg.I32(rows), Arg.I32(cols));
    }

    // ---- attention.cu -------------------------------------------------------------------------

    private static void CheckHeads(int batch, int seq, int heads, int headDim, params (Tensor T, string Name)[] tensors)
    {
        long n = (long)batch * seq * heads * headDim;
        foreach (var (t, name) in tensors)
        {
            Expect(t, DType.F32, name);
            ExpectLength(t, name.Contains("qkv", StringComparison.Ordinal) ? 3 * n : n, name);
        }
    }

    public void SplitQkvHeads(Tensor qkv, Tensor q, Tensor k, Tensor v, int batch, int seq, int heads, int headDim)
    {
        MakeCurrent();
        CheckHeads(batch, seq, heads, headDim, (qkv, nameof(qkv)), (q, nameof(q)), (k, nameof(k)), (v, nameof(v)));
        Elementwise("attention.cu", "split_qkv_heads_f32", 3L * batch * seq * heads * headDim,
            Arg.Ptr(Ptr(qkv)), Arg.Ptr(Ptr(q)), Arg.Ptr(Ptr(k)), Arg.Ptr(Ptr(v)), Arg.I32(batch), Arg.I32(seq), Arg.I32(heads), Arg.I32(headDim));
    }

    public void SplitQkvHeadsBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dqkv, int batch, int seq, int heads, int headDim)
    {
        MakeCurrent();
        CheckHeads(batch, seq, heads, headDim, (dqkv, nameof(dqkv)), (dq, nameof(dq)), (dk, nameof(dk)), (dv, nameof(dv)));
        Elementwise("attention.cu", "split_qkv_heads_backward_f32", 3L * batch * seq * heads * headDim,
            Arg.Ptr(Ptr(dq)), Arg.Ptr(Ptr(dk)), Arg.Ptr(Ptr(dv)), Arg.Ptr(Ptr(dqkv)), Arg.I32(batch), Arg.I32(seq), Arg.I32(heads), Arg.I32(headDim));
    }

    public void MergeHeads(Tensor x, Tensor y, int batch, int seq, int heads, int headDim)
    {
        MakeCurrent();
        CheckHeads(batch, seq, heads, headDim, (x, nameof(x)), (y, nameof(y)));
        Elementwise("attention.cu", "merge_heads_f32", (long)batch * seq * heads * headDim,
            Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(y)), Arg.I32(batch), Arg.I32(seq), Arg.I32(heads), Arg.I32(headDim));
    }

    public void MergeHeadsBackward(Tensor dy, Tensor dx, int batch, int seq, int heads, int headDim)
    {
        MakeCurrent();
        CheckHeads(batch, seq, heads, headDim, (dy, nameof(dy)), (dx, nameof(dx)));
        Elementwise("attention.cu", "merge_heads_backward_f32", (long)batch * seq * heads * headDim,
            Arg.Ptr(Ptr(dy)), Arg.Ptr(Ptr(dx)), Arg.I32(batch), Arg.I32(seq), Arg.I32(heads), Arg.I32(headDim));
    }

    public void AttentionSoftmaxForward(Tensor scores, Tensor keyMask, Tensor probs, float scale, int batch, int heads, int seqQ, int seqK)
    {
        MakeCurrent();
        long n = (long)batch * heads * seqQ * seqK;
        Expect(scores, DType.F32, nameof(scores)); Expect(keyMask, DType.F32, nameof(keyMask)); Expect(probs, DType.F32, nameof(probs));
        ExpectLength(scores, n, nameof(scores)); ExpectLength(probs, n, nameof(probs)); ExpectLength(keyMask, (long)batch * seqK, nameof(keyMask));
        long rows = (long)batch * heads * seqQ;
        if (rows == 0 || seqK == 0) return;
        Launch("attention.cu", "attention_softmax_forward_f32", (WarpRowGrid(rows), 1), (256, 1),
            Arg.Ptr(Ptr(scores)), Arg.Ptr(Ptr(keyMask)), Arg.Ptr(Ptr(probs)), Arg.F32(scale),
            Arg.I32(batch), Arg.I32(heads), Arg.I32(seqQ), Arg.I32(seqK));
    }

    public void AttentionSoftmaxBackward(Tensor probs, Tensor dprobs, Tensor dscores, float scale, int rows, int seqK)
    {
        MakeCurrent();
        long n = (long)rows * seqK;
        foreach (var (t, name) in new[] { (probs, nameof(probs)), (dprobs, nameof(dprobs)), (dscores, nameof(dscores)) })
        {
            Expect(t, DType.F32, name);
            ExpectLength(t, n, name);
        }
        if (rows == 0 || seqK == 0) return;
        Launch("attention.cu", "attention_softmax_backward_f32", (WarpRowGrid(rows), 1), (256, 1),
            Arg.Ptr(Ptr(probs)), Arg.Ptr(Ptr(dprobs)), Arg.Ptr(Ptr(dscores)), Arg.F32(scale), Arg.I32(rows), Arg.I32(seqK));
    }

    // ---- embedding.cu -------------------------------------------------------------------------

    public void EmbeddingForward(Tensor ids, Tensor table, Tensor output, int count, int dim, bool accumulate)
    {
        MakeCurrent();
        Expect(ids, DType.I32, nameof(ids)); Expect(table, DType.F32, nameof(table)); Expect(output, DType.F32, nameof(output));
        ExpectLength(ids, count, nameof(ids)); ExpectLength(output, (long)count * dim, nameof(output));
        if (dim <= 0 || table.Length % dim != 0)
            throw new ArgumentException($"table: {table} holds {table.Length} elements, not a whole number of rows of dim {dim}");
        int vocab = checked((int)(table.Length / dim));
        Elementwise("embedding.cu", "embedding_forward_f32", (long)count * dim,
            Arg.Ptr(Ptr(ids)), Arg.Ptr(Ptr(table)), Arg.Ptr(Ptr(output)), Arg.I32(count), Arg.I32(dim), Arg.I32(vocab),
            Arg.I32(accumulate ? 1 : 0), Arg.Ptr(_status));
    }

    public void EmbeddingBackward(Tensor ids, Tensor doutput, Tensor dtable, int count, int dim)
    {
        MakeCurrent();
        Expect(ids, DType.I32, nameof(ids)); Expect(doutput, DType.F32, nameof(doutput)); Expect(dtable, DType.F32, nameof(dtable));
        ExpectLength(ids, count, nameof(ids)); ExpectLength(doutput, (long)count * dim, nameof(doutput));
        if (dim <= 0 || dtable.Length % dim != 0)
            throw new ArgumentException($"dtable: {dtable} holds {dtable.Length} elements, not a whole number of rows of dim {dim}");
        if (count == 0) return;
        Launch("embedding.cu", "embedding_backward_f32", (WarpRowGrid(count), (uint)((dim + 255) / 256)), (256, 1),
            Arg.Ptr(Ptr(ids)), Arg.Ptr(Ptr(doutput)), Arg.Ptr(Ptr(dtable)), Arg.I32(count), Arg.I32(dim),
            Arg.I32(checked((int)(dtable.Length / dim))));
    }

    // ---- dropout.cu ---------------------------------------------------------------------------

    public void DropoutForward(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter) => Dropout(x, y, p, seed, stream, counter, "x", "y");

    public void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, ulong stream, ulong counter) => Dropout(dy, dx, p, seed, stream, counter, "dy", "dx");

    private void Dropout(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter, string xName, string yName)
    {
        MakeCurrent();
        Expect(x, DType.F32, xName); Expect(y, DType.F32, yName); SameLength(x, y, xName, yName);
        if (!(p >= 0f && p <= 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout probability must be in [0, 1]");
        if (p == 0f)
        {
            if (!ReferenceEquals(x.Storage, y.Storage) || x.Offset != y.Offset) Copy(x, y);
            return;
        }
        if (x.Length == 0) return;
        Launch("dropout.cu", "dropout_f32", (GridFor((x.Length + 3) / 4), 1), (256, 1),
            Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(y)), Arg.F32(p), Arg.U64(seed), Arg.U64(stream), Arg.U64(counter), Arg.I64(x.Length));
    }

    // ---- crossentropy.cu ----------------------------------------------------------------------

    private static uint CrossEntropyThreads(int classes) => classes >= 4096 ? 1024u : classes >= 1024 ? 512u : classes >= 256 ? 256u : 64u;

    public void CrossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int classes, int ignoreIndex)
    {
        MakeCurrent();
        Expect(logits, DType.F32, nameof(logits)); Expect(targets, DType.I32, nameof(targets)); Expect(losses, DType.F32, nameof(losses));
        ExpectLength(logits, (long)rows * classes, nameof(logits)); ExpectLength(targets, rows, nameof(targets)); ExpectLength(losses, rows, nameof(losses));
        if (rows == 0) return;
        Launch("crossentropy.cu", "crossentropy_forward_f32", ((uint)rows, 1), (CrossEntropyThreads(classes), 1),
            Arg.Ptr(Ptr(logits)), Arg.Ptr(Ptr(targets)), Arg.Ptr(Ptr(losses)), Arg.I32(rows), Arg.I32(classes), Arg.I32(ignoreIndex),
            Arg.Ptr(_status));
    }

    public void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor dlogits, int rows, int classes, int ignoreIndex, float scale)
    {
        MakeCurrent();
        Expect(logits, DType.F32, nameof(logits)); Expect(targets, DType.I32, nameof(targets)); Expect(dlogits, DType.F32, nameof(dlogits));
        ExpectLength(logits, (long)rows * classes, nameof(logits)); ExpectLength(targets, rows, nameof(targets));
        ExpectLength(dlogits, (long)rows * classes, nameof(dlogits));
        if (rows == 0) return;
        Launch("crossentropy.cu", "crossentropy_backward_f32", ((uint)rows, 1), (CrossEntropyThreads(classes), 1),
            Arg.Ptr(Ptr(logits)), Arg.Ptr(Ptr(targets)), Arg.Ptr(Ptr(dlogits)), Arg.I32(rows), Arg.I32(classes), Arg.I32(ignoreIndex),
            Arg.F32(scale), Arg.Ptr(_status));
    }

    // ---- elementwise.cu and reduction.cu ----------------------------------------------------

    public void Add(Tensor a, Tensor b, Tensor y)
    {
        MakeCurrent();
        Expect(a, DType.F32, nameof(a)); Expect(b, DType.F32, nameof(b)); Expect(y, DType.F32, nameof(y));
        SameLength(a, b, nameof(a), nameof(b)); SameLength(a, y, nameof(a), nameof(y));
        Elementwise("elementwise.cu", "add_f32", a.Length, Arg.Ptr(Ptr(a)), Arg.Ptr(Ptr(b)), Arg.Ptr(Ptr(y)), Arg.I64(a.Length));
    }

    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(y, DType.F32, nameof(y)); SameLength(x, y, nameof(x), nameof(y));
        Elementwise("elementwise.cu", "axpy_f32", x.Length, Arg.F32(alpha), Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(y)), Arg.I64(x.Length));
    }

    public void Scale(Tensor x, float alpha)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x));
        Elementwise("elementwise.cu", "scale_f32", x.Length, Arg.Ptr(Ptr(x)), Arg.F32(alpha), Arg.I64(x.Length));
    }

    public void ApplyMask(Tensor x, Tensor mask)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(mask, DType.U8, nameof(mask)); SameLength(x, mask, nameof(x), nameof(mask));
        Elementwise("elementwise.cu", "apply_mask_f32", x.Length, Arg.Ptr(Ptr(x)), Arg.Ptr(Ptr(mask)), Arg.I64(x.Length));
    }

    public void Sum(Tensor x, Tensor result) => Reduce(x, result, square: false);

    public void SumOfSquares(Tensor x, Tensor result) => Reduce(x, result, square: true);

    private void Reduce(Tensor x, Tensor result, bool square)
    {
        MakeCurrent();
        Expect(x, DType.F32, nameof(x)); Expect(result, DType.F32, nameof(result)); ExpectLength(result, 1, nameof(result));
        // Fixed shape (REDUCE_BLOCKS x 256), so the summation order never depends on the device.
        Launch("reduction.cu", "sum_partial_f64", (ReduceBlocks, 1), (256, 1),
            Arg.Ptr(Ptr(x)), Arg.Ptr(_reducePartials), Arg.I64(x.Length), Arg.I32(square ? 1 : 0));
        Launch("reduction.cu", "sum_finish_f64", (1, 1), (256, 1), Arg.Ptr(_reducePartials), Arg.I32(ReduceBlocks), Arg.Ptr(Ptr(result)));
    }

    // ---- adamw.cu -----------------------------------------------------------------------------

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? mask, Tensor? gradNormSquared, in AdamWParameters p)
    {
        MakeCurrent();
        foreach (var (t, name) in new[] { (param, nameof(param)), (grad, nameof(grad)), (m, nameof(m)), (v, nameof(v)) })
        {
            Expect(t, DType.F32, name);
            SameLength(param, t, nameof(param), name);
        }
        if (mask != null) { Expect(mask, DType.U8, nameof(mask)); SameLength(param, mask, nameof(param), nameof(mask)); }
        if (gradNormSquared != null) { Expect(gradNormSquared, DType.F32, nameof(gradNormSquared)); ExpectLength(gradNormSquared, 1, nameof(gradNormSquared)); }
        if (p.Step < 1) throw new ArgumentOutOfRangeException(nameof(p), p.Step, "AdamW step is 1-based and must be at least 1");
        float bc1 = (float)(1.0 - Math.Pow(p.Beta1, p.Step));
        float bc2 = (float)(1.0 - Math.Pow(p.Beta2, p.Step));
        if (param.Length == 0) return;
        Launch("adamw.cu", "adamw_f32", (GridFor(param.Length), 1), (256, 1),
            Arg.Ptr(Ptr(param)), Arg.Ptr(Ptr(grad)), Arg.Ptr(Ptr(m)), Arg.Ptr(Ptr(v)),
            mask != null ? Arg.Ptr(Ptr(mask)) : Arg.Null, gradNormSquared != null ? Arg.Ptr(Ptr(gradNormSquared)) : Arg.Null,
            Arg.F32(p.LearningRate), Arg.F32(p.Beta1), Arg.F32(p.Beta2), Arg.F32(p.Epsilon), Arg.F32(p.WeightDecay),
            Arg.F32(bc1), Arg.F32(bc2), Arg.F32(p.MaxGradNorm), Arg.I64(param.Length));
    }
}
