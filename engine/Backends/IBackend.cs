using NativeSparsity.Engine.Tensors;

namespace NativeSparsity.Engine.Backends;

/// <summary>Hyper-parameters of one fused AdamW pass (decoupled weight decay, bias correction).</summary>
public readonly record struct AdamWParameters(
    float LearningRate,
    float Beta1,
    float Beta2,
    float Epsilon,
    float WeightDecay,
    /// <summary>1-based step number, used for bias correction.</summary>
    long Step,
    /// <summary>Clip gradients to this global L2 norm; 0 or negative disables clipping.</summary>
    float MaxGradNorm = 0f);

/// <summary>
/// Every op the BERT forward and backward pass needs, one method each. All tensors are contiguous
/// row-major views (see <see cref="Tensor"/>). Ops are asynchronous on device backends: results
/// are only guaranteed on the host after <see cref="CopyToHost{T}"/> or <see cref="Synchronize"/>.
/// Unless stated, outputs are overwritten; "accumulate" means added to what is there.
/// Reductions write their result into a tensor so device backends need no host round trip.
/// Randomness is Philox4x32-10 addressed by (seed, stream, counter): element i of a call uses
/// counter + i, so CPU and GPU draw the same numbers (see <see cref="Random.Philox"/>).
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name shown to users, e.g. "cpu" or "cuda:0 (NVIDIA H200)".</summary>
    string Name { get; }

    // ---- memory ----------------------------------------------------------------------------

    /// <summary>A zero-filled tensor in fresh storage.</summary>
    Tensor Allocate(DType dtype, params int[] shape);

    /// <summary>Copies host data into <paramref name="dst"/>; lengths must match.</summary>
    void CopyFromHost<T>(ReadOnlySpan<T> src, Tensor dst) where T : unmanaged;

    /// <summary>Copies <paramref name="src"/> to the host, waiting for pending work that writes it.</summary>
    void CopyToHost<T>(Tensor src, Span<T> dst) where T : unmanaged;

    /// <summary>Waits until every op issued so far has finished.</summary>
    void Synchronize();

    /// <summary>dst = src (same dtype and length).</summary>
    void Copy(Tensor src, Tensor dst);

    /// <summary>Sets every F32 element of <paramref name="dst"/> to <paramref name="value"/>.</summary>
    void Fill(Tensor dst, float value);

    // ---- GEMM (Gemm.cs / gemm via cuBLAS) --------------------------------------------------

    /// <summary>
    /// Row-major C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C. A is stored [m,k] with row
    /// stride lda (or [k,m] when transA); B is stored [k,n] with ldb (or [n,k] when transB); C is
    /// [m,n] with ldc. beta = 0 ignores C's previous contents (NaN included).
    /// </summary>
    void Gemm(bool transA, bool transB, int m, int n, int k,
              float alpha, Tensor a, int lda, Tensor b, int ldb,
              float beta, Tensor c, int ldc);

    /// <summary><see cref="Gemm"/> repeated for batch i = 0..batch-1 on A + i*strideA, B + i*strideB, C + i*strideC.</summary>
    void GemmStridedBatched(bool transA, bool transB, int m, int n, int k,
                            float alpha, Tensor a, int lda, long strideA,
                            Tensor b, int ldb, long strideB,
                            float beta, Tensor c, int ldc, long strideC, int batch);

    // ---- bias (Bias.cs) --------------------------------------------------------------------

    /// <summary>y[r,c] += bias[c] for a [rows, cols] y.</summary>
    void AddBias(Tensor y, Tensor bias, int rows, int cols);

    /// <summary>dbias[c] += sum over r of dy[r,c].</summary>
    void BiasGradient(Tensor dy, Tensor dbias, int rows, int cols);

    // ---- GELU, erf form (Gelu.cs) ----------------------------------------------------------

    /// <summary>y = x * 0.5 * (1 + erf(x / sqrt 2)); y may alias x.</summary>
    void GeluForward(Tensor x, Tensor y);

    /// <summary>dx = dy * gelu'(x); dx may alias dy.</summary>
    void GeluBackward(Tensor x, Tensor dy, Tensor dx);

    // ---- tanh, for the BERT pooler (Tanh.cs) ----------------------------------------------

    /// <summary>y = tanh(x); y may alias x.</summary>
    void TanhForward(Tensor x, Tensor y);

    /// <summary>dx = dy * (1 - y^2) from the forward output y; dx may alias dy.</summary>
    void TanhBackward(Tensor y, Tensor dy, Tensor dx);

    // ---- LayerNorm over the last dimension (LayerNorm.cs) ----------------------------------

    /// <summary>
    /// y = (x - mean) * rstd * gamma + beta per row of a [rows, cols] x, with rstd = 1/sqrt(var + eps)
    /// (biased variance). Saves mean[rows] and rstd[rows] for the backward pass.
    /// </summary>
    void LayerNormForward(Tensor x, Tensor gamma, Tensor beta, Tensor y, Tensor mean, Tensor rstd,
                          int rows, int cols, float eps);

    /// <summary>
    /// Post-LN residual block in one pass: sum = a + b (written, the backward needs it), then
    /// <see cref="LayerNormForward"/> of sum into y.
    /// </summary>
    void AddLayerNormForward(Tensor a, Tensor b, Tensor sum, Tensor gamma, Tensor beta, Tensor y,
                             Tensor mean, Tensor rstd, int rows, int cols, float eps);

    /// <summary>dx = LayerNorm input gradient (overwritten); dgamma and dbeta accumulate.</summary>
    void LayerNormBackward(Tensor dy, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dgamma, Tensor dbeta, int rows, int cols);

    // ---- attention (Attention.cs) ----------------------------------------------------------

    /// <summary>
    /// qkv [batch, seq, 3*heads*headDim] (Q, K, V blocks side by side, as one fused projection
    /// writes them) to q, k, v each [batch, heads, seq, headDim].
    /// </summary>
    void SplitQkvHeads(Tensor qkv, Tensor q, Tensor k, Tensor v, int batch, int seq, int heads, int headDim);

    /// <summary>Inverse of <see cref="SplitQkvHeads"/> for gradients: dqkv is overwritten.</summary>
    void SplitQkvHeadsBackward(Tensor dq, Tensor dk, Tensor dv, Tensor dqkv, int batch, int seq, int heads, int headDim);

    /// <summary>x [batch, heads, seq, headDim] to y [batch, seq, heads*headDim].</summary>
    void MergeHeads(Tensor x, Tensor y, int batch, int seq, int heads, int headDim);

    /// <summary>Inverse permutation of <see cref="MergeHeads"/>: dy [batch, seq, heads*headDim] to dx [batch, heads, seq, headDim].</summary>
    void MergeHeadsBackward(Tensor dy, Tensor dx, int batch, int seq, int heads, int headDim);

    /// <summary>
    /// probs[b,h,i,j] = softmax over j of (scale * scores[b,h,i,j] + keyMask[b,j]) for scores
    /// [batch, heads, seqQ, seqK] and an additive keyMask [batch, seqK] (0 keeps, a large negative
    /// number such as -10000 hides a padding key). probs may alias scores.
    /// </summary>
    void AttentionSoftmaxForward(Tensor scores, Tensor keyMask, Tensor probs, float scale,
                                 int batch, int heads, int seqQ, int seqK);

    /// <summary>dscores = scale * probs * (dprobs - sum_j dprobs*probs); dscores may alias dprobs.</summary>
    void AttentionSoftmaxBackward(Tensor probs, Tensor dprobs, Tensor dscores, float scale,
                                  int rows, int seqK);

    // ---- embeddings (Embedding.cs) ---------------------------------------------------------

    /// <summary>
    /// output[i,:] (+)= table[ids[i],:] for I32 ids [count] and table [vocab, dim]. With accumulate
    /// the row is added, so word + position + token-type embeddings sum in three calls. An id
    /// outside [0, vocab) is an error on the CPU.
    /// </summary>
    void EmbeddingForward(Tensor ids, Tensor table, Tensor output, int count, int dim, bool accumulate);

    /// <summary>dtable[ids[i],:] += doutput[i,:]; deterministic (same result for any thread count).</summary>
    void EmbeddingBackward(Tensor ids, Tensor doutput, Tensor dtable, int count, int dim);

    // ---- dropout (Dropout.cs) --------------------------------------------------------------

    /// <summary>
    /// Inverted dropout: y[i] = x[i] / (1 - p) if Philox.Uniform(seed, stream, counter + i) &gt;= p,
    /// else 0. The backward pass regenerates the same mask from the same arguments, so nothing is
    /// stored. p = 0 copies. y may alias x.
    /// </summary>
    void DropoutForward(Tensor x, Tensor y, float p, ulong seed, ulong stream, ulong counter);

    /// <summary>dx = dy masked and scaled exactly as the forward call with the same arguments did.</summary>
    void DropoutBackward(Tensor dy, Tensor dx, float p, ulong seed, ulong stream, ulong counter);

    // ---- fused softmax cross-entropy (CrossEntropy.cs) -------------------------------------

    /// <summary>
    /// losses[r] = logsumexp(logits[r,:]) - logits[r, targets[r]] for logits [rows, classes] and I32
    /// targets; rows whose target equals ignoreIndex get loss 0.
    /// </summary>
    void CrossEntropyForward(Tensor logits, Tensor targets, Tensor losses, int rows, int classes, int ignoreIndex);

    /// <summary>
    /// dlogits[r,:] = scale * (softmax(logits[r,:]) - onehot(targets[r])), zero for ignored rows;
    /// scale is usually 1 / (number of counted rows). dlogits may alias logits.
    /// </summary>
    void CrossEntropyBackward(Tensor logits, Tensor targets, Tensor dlogits, int rows, int classes,
                              int ignoreIndex, float scale);

    // ---- elementwise and reductions (Elementwise.cs, Reduction.cs) -------------------------

    /// <summary>y = a + b (residual add); y may alias a or b.</summary>
    void Add(Tensor a, Tensor b, Tensor y);

    /// <summary>y += alpha * x.</summary>
    void Axpy(float alpha, Tensor x, Tensor y);

    /// <summary>x *= alpha.</summary>
    void Scale(Tensor x, float alpha);

    /// <summary>result[0] = sum of x, accumulated in double precision in a fixed order.</summary>
    void Sum(Tensor x, Tensor result);

    /// <summary>result[0] = sum of x^2 (for the global gradient norm), fixed order, double accumulation.</summary>
    void SumOfSquares(Tensor x, Tensor result);

    // ---- optimizer (Optim/AdamW.cs on the CPU) ---------------------------------------------

    /// <summary>
    /// One fused AdamW pass over equal-length views param, grad, m, v. When gradNormSquared (a
    /// 1-element tensor holding the global sum of squared gradients) is given and MaxGradNorm &gt; 0,
    /// gradients are scaled by min(1, MaxGradNorm / sqrt(gradNormSquared)) first. Where mask (U8,
    /// same length) is 0, param, grad, m and v are set to exactly +0 and stay there.
    /// </summary>
    void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, Tensor? mask, Tensor? gradNormSquared,
               in AdamWParameters p);

    /// <summary>x[i] = 0 where mask[i] == 0 (U8 mask of the same length).</summary>
    void ApplyMask(Tensor x, Tensor mask);
}
