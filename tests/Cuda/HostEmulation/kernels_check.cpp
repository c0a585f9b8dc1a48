// Runs every kernel of kernels/*.cu under the host emulation in cuda_host.h on small odd shapes and
// compares with float64 references written here. Prints one line per check and "N passed, N failed".
// Built and run by tests/Cuda/HostKernelTests.cs (g++ -std=c++20 -pthread).
#include "cuda_host.h"
#include <cstdio>
#include <random>
#include <string>

#include "../../../kernels/elementwise.cu"
#include "../../../kernels/gelu.cu"
#include "../../../kernels/bias.cu"
#include "../../../kernels/reduction.cu"
#include "../../../kernels/layernorm.cu"
#include "../../../kernels/attention.cu"
#include "../../../kernels/embedding.cu"
#include "../../../kernels/dropout.cu"
#include "../../../kernels/crossentropy.cu"
#include "../../../kernels/adamw.cu"
#include "../../../kernels/radixselect.cu"
#include <algorithm>
#include <numeric>

static int passed = 0, failed = 0;
static std::mt19937 rng(12345);

static std::vector<float> rnd(size_t n, float scale = 1.0f)
{
    std::uniform_real_distribution<float> d(-scale, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
}

static void check(const std::string& what, const float* got, const std::vector<double>& want, double tol)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); i++) { double d = got[i] - want[i]; num += d * d; den += want[i] * want[i]; }
    double err = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
    bool ok = err <= tol && std::isfinite(err);
    (ok ? passed : failed)++;
    std::printf("%s %s relative error %.3g\n", ok ? "ok  " : "FAIL", what.c_str(), err);
}

static void check(const std::string& what, const std::vector<float>& got, const std::vector<double>& want, double tol) { check(what, got.data(), want, tol); }

// Copies into a buffer offset by `shift` floats, so shift = 1 forces the unaligned (scalar) paths.
struct Buf
{
    std::vector<float> storage;
    float* p;
    Buf(const std::vector<float>& v, int shift) : storage(v.size() + 8)
    {
        size_t base = (16 - ((size_t)storage.data() & 15)) / 4 % 4;   // first 16-byte-aligned element
        p = storage.data() + base + shift;
        std::copy(v.begin(), v.end(), p);
    }
    std::vector<float> get(size_t n) const { return std::vector<float>(p, p + n); }
};

static const dim3 B256{256, 1, 1}, B64{64, 1, 1};

static void elementwise(int n, int shift)
{
    std::string tag = " n=" + std::to_string(n) + " shift=" + std::to_string(shift);
    auto a = rnd(n), b = rnd(n);
    Buf A(a, shift), Bb(b, shift), Y(std::vector<float>(n), shift);
    launch(add_f32, {2}, B64, A.p, Bb.p, Y.p, (i64)n);
    std::vector<double> ref(n);
    for (int i = 0; i < n; i++) ref[i] = (double)a[i] + b[i];
    check("add" + tag, Y.p, ref, 1e-7);
    launch(axpy_f32, {2}, B64, -0.5f, A.p, Y.p, (i64)n);
    for (int i = 0; i < n; i++) ref[i] += -0.5 * a[i];
    check("axpy" + tag, Y.p, ref, 1e-6);
    launch(scale_f32, {2}, B64, Y.p, 3.0f, (i64)n);
    for (int i = 0; i < n; i++) ref[i] *= 3.0;
    check("scale" + tag, Y.p, ref, 1e-6);
    std::vector<unsigned char> mask(n + 8);
    unsigned char* m = mask.data() + (shift ? 1 : 0);
    for (int i = 0; i < n; i++) { m[i] = rng() % 3 == 0 ? 0 : 1; if (!m[i]) ref[i] = 0; }
    launch(apply_mask_f32, {2}, B64, Y.p, (const unsigned char*)m, (i64)n);
    check("apply_mask" + tag, Y.p, ref, 1e-6);

    launch(gelu_forward_f32, {2}, B64, (const float*)A.p, Y.p, (i64)n);
    for (int i = 0; i < n; i++) { double x = a[i] * 4.0 / 4.0; ref[i] = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }
    check("gelu_forward" + tag, Y.p, ref, 1e-6);
    launch(gelu_backward_f32, {2}, B64, (const float*)A.p, (const float*)Bb.p, Y.p, (i64)n);
    for (int i = 0; i < n; i++)
    {
        double x = a[i];
        ref[i] = b[i] * (0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
    }
    check("gelu_backward" + tag, Y.p, ref, 1e-6);

    // The backend launches REDUCE_BLOCKS blocks; three keep the emulation quick and still exercise the grid stride.
    const int blocks = 3;
    std::vector<double> parts(blocks);
    float result = 0;
    for (int square = 0; square < 2; square++)
    {
        launch(sum_partial_f64, {blocks}, B256, (const float*)A.p, parts.data(), (i64)n, square);
        launch(sum_finish_f64, {1}, B64, (const double*)parts.data(), blocks, &result);
        double s = 0;
        for (int i = 0; i < n; i++) s += square ? (double)a[i] * a[i] : a[i];
        check(std::string(square ? "sum_of_squares" : "sum") + tag, &result, {s}, 1e-6);
    }
}

static void bias(int rows, int cols, int shift)
{
    std::string tag = " " + std::to_string(rows) + "x" + std::to_string(cols) + " shift=" + std::to_string(shift);
    auto y = rnd((size_t)rows * cols), b = rnd(cols);
    Buf Y(y, shift), Bi(b, shift);
    launch(add_bias_f32, {3}, B64, Y.p, (const float*)Bi.p, rows, cols);
    std::vector<double> ref(y.size());
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) ref[(size_t)r * cols + c] = (double)y[(size_t)r * cols + c] + b[c];
    check("add_bias" + tag, Y.p, ref, 1e-7);

    const int chunk = 128;
    int chunks = (rows + chunk - 1) / chunk;
    std::vector<float> partial((size_t)chunks * cols), db = rnd(cols);
    std::vector<double> dref(db.begin(), db.end());
    launch(bias_grad_partial_f32, {(unsigned)((cols + 31) / 32), (unsigned)chunks}, dim3{32, 8, 1}, (const float*)y.data(), partial.data(), rows, cols, chunk);
    launch(column_sum_accumulate_f32, {1}, B64, (const float*)partial.data(), db.data(), chunks, cols);
    for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) dref[c] += y[(size_t)r * cols + c];
    check("bias_gradient" + tag, db, dref, 1e-6);
}

static void layernorm(int rows, int cols, int shift)
{
    std::string tag = " " + std::to_string(rows) + "x" + std::to_string(cols) + " shift=" + std::to_string(shift);
    size_t n = (size_t)rows * cols;
    auto a = rnd(n, 2), b = rnd(n), gamma = rnd(cols), beta = rnd(cols), dy = rnd(n);
    for (auto& v : a) v += 4;
    Buf A(a, shift), Bb(b, shift), S(std::vector<float>(n), shift), Y(std::vector<float>(n), shift), G(gamma, shift), Be(beta, shift);
    std::vector<float> mean(rows), rstd(rows);
    unsigned grid = (rows + 7) / 8;
    const float eps = 1e-5f;
    std::vector<double> sum(n), yref(n), mref(rows), rref(rows);
    for (size_t i = 0; i < n; i++) sum[i] = (float)(a[i] + b[i]);
    for (int r = 0; r < rows; r++)
    {
        double mu = 0, var = 0;
        for (int c = 0; c < cols; c++) mu += sum[(size_t)r * cols + c];
        mu /= cols;
        for (int c = 0; c < cols; c++) { double d = sum[(size_t)r * cols + c] - mu; var += d * d; }
        double rs = 1 / std::sqrt(var / cols + eps);
        mref[r] = mu; rref[r] = rs;
        for (int c = 0; c < cols; c++) yref[(size_t)r * cols + c] = (sum[(size_t)r * cols + c] - mu) * rs * gamma[c] + beta[c];
    }
    launch(add_layernorm_forward_f32, {grid}, B256, (const float*)A.p, (const float*)Bb.p, S.p, (const float*)G.p, (const float*)Be.p,
           Y.p, mean.data(), rstd.data(), rows, cols, eps);
    check("add_layernorm sum" + tag, S.p, sum, 0);
    check("add_layernorm y" + tag, Y.p, yref, 1e-6);
    check("add_layernorm mean" + tag, mean, mref, 1e-6);
    check("add_layernorm rstd" + tag, rstd, rref, 1e-6);
    std::fill(Y.p, Y.p + n, 0.0f);
    launch(layernorm_forward_f32, {grid}, B256, (const float*)S.p, (const float*)G.p, (const float*)Be.p, Y.p, mean.data(), rstd.data(), rows, cols, eps);
    check("layernorm y" + tag, Y.p, yref, 1e-6);

    // backward against the float64 formulas on the same saved statistics
    std::vector<double> dxref(n), dgref(cols), dbref(cols);
    std::vector<float> dg = rnd(cols), dbt = rnd(cols);
    for (int c = 0; c < cols; c++) { dgref[c] = dg[c]; dbref[c] = dbt[c]; }
    for (int r = 0; r < rows; r++)
    {
        double s1 = 0, s2 = 0;
        for (int c = 0; c < cols; c++)
        {
            size_t i = (size_t)r * cols + c;
            double xhat = (S.p[i] - (double)mean[r]) * rstd[r], g = (double)dy[i] * gamma[c];
            s1 += g; s2 += g * xhat;
            dgref[c] += dy[i] * xhat; dbref[c] += dy[i];
        }
        for (int c = 0; c < cols; c++)
        {
            size_t i = (size_t)r * cols + c;
            double xhat = (S.p[i] - (double)mean[r]) * rstd[r];
            dxref[i] = rstd[r] * ((double)dy[i] * gamma[c] - s1 / cols - xhat * s2 / cols);
        }
    }
    const int chunk = 128;
    int chunks = (rows + chunk - 1) / chunk;
    std::vector<float> pg((size_t)chunks * cols), pb((size_t)chunks * cols), dx(n);
    launch(layernorm_param_grad_partial_f32, {(unsigned)((cols + 31) / 32), (unsigned)chunks}, dim3{32, 8, 1},
           (const float*)dy.data(), (const float*)S.p, (const float*)mean.data(), (const float*)rstd.data(), pg.data(), pb.data(), rows, cols, chunk);
    launch(column_sum_accumulate_f32, {1}, B64, (const float*)pg.data(), dg.data(), chunks, cols);
    launch(column_sum_accumulate_f32, {1}, B64, (const float*)pb.data(), dbt.data(), chunks, cols);
    launch(layernorm_backward_dx_f32, {grid}, B256, (const float*)dy.data(), (const float*)S.p, (const float*)G.p,
           (const float*)mean.data(), (const float*)rstd.data(), dx.data(), rows, cols);
    check("layernorm dx" + tag, dx, dxref, 1e-5);
    check("layernorm dgamma" + tag, dg, dgref, 1e-6);
    check("layernorm dbeta" + tag, dbt, dbref, 1e-6);
}

static void heads(int batch, int seq, int nh, int hd, int shift)
{
    std::string tag = " " + std::to_string(batch) + "x" + std::to_string(seq) + "x" + std::to_string(nh) + "x" + std::to_string(hd) + " shift=" + std::to_string(shift);
    size_t n = (size_t)batch * seq * nh * hd;
    auto qkv = rnd(3 * n);
    Buf QKV(qkv, shift), Q(std::vector<float>(n), shift), K(std::vector<float>(n), shift), V(std::vector<float>(n), shift);
    launch(split_qkv_heads_f32, {3}, B64, (const float*)QKV.p, Q.p, K.p, V.p, batch, seq, nh, hd);
    std::vector<double> rq(n), rk(n), rv(n);
    for (int b = 0; b < batch; b++) for (int s = 0; s < seq; s++) for (int h = 0; h < nh; h++) for (int d = 0; d < hd; d++)
    {
        size_t src = (((size_t)b * seq + s) * 3 * nh) * hd, dst = (((size_t)b * nh + h) * seq + s) * hd + d;
        rq[dst] = qkv[src + (size_t)(0 * nh + h) * hd + d];
        rk[dst] = qkv[src + (size_t)(1 * nh + h) * hd + d];
        rv[dst] = qkv[src + (size_t)(2 * nh + h) * hd + d];
    }
    check("split_qkv q" + tag, Q.p, rq, 0); check("split_qkv k" + tag, K.p, rk, 0); check("split_qkv v" + tag, V.p, rv, 0);
    Buf D(std::vector<float>(3 * n), shift);
    launch(split_qkv_heads_backward_f32, {3}, B64, (const float*)Q.p, (const float*)K.p, (const float*)V.p, D.p, batch, seq, nh, hd);
    check("split_qkv backward" + tag, D.p, std::vector<double>(qkv.begin(), qkv.end()), 0);
    Buf M(std::vector<float>(n), shift), X(std::vector<float>(n), shift);
    launch(merge_heads_f32, {3}, B64, (const float*)Q.p, M.p, batch, seq, nh, hd);
    std::vector<double> rm(n);
    for (int b = 0; b < batch; b++) for (int s = 0; s < seq; s++) for (int h = 0; h < nh; h++) for (int d = 0; d < hd; d++)
        rm[(((size_t)b * seq + s) * nh + h) * hd + d] = rq[(((size_t)b * nh + h) * seq + s) * hd + d];
    check("merge_heads" + tag, M.p, rm, 0);
    launch(merge_heads_backward_f32, {3}, B64, (const float*)M.p, X.p, batch, seq, nh, hd);
    check("merge_heads backward" + tag, X.p, rq, 0);
}

static void softmax(int batch, int nh, int sq, int sk)
{
    std::string tag = " " + std::to_string(batch) + "x" + std::to_string(nh) + "x" + std::to_string(sq) + "x" + std::to_string(sk);
    size_t n = (size_t)batch * nh * sq * sk;
    auto scores = rnd(n, 8), dp = rnd(n);
    std::vector<float> mask((size_t)batch * sk), probs(n), ds(n);
    for (size_t i = 0; i < mask.size(); i++) mask[i] = (i % sk != 0 && rng() % 4 == 0) ? -10000.0f : 0.0f;
    int rows = batch * nh * sq;
    launch(attention_softmax_forward_f32, {(unsigned)((rows + 7) / 8)}, B256, (const float*)scores.data(), (const float*)mask.data(), probs.data(), 0.125f, batch, nh, sq, sk);
    std::vector<double> ref(n), dref(n);
    for (int r = 0; r < rows; r++)
    {
        int b = r / (nh * sq);
        double mx = -1e300, sum = 0;
        for (int j = 0; j < sk; j++) mx = std::max(mx, 0.125 * scores[(size_t)r * sk + j] + mask[(size_t)b * sk + j]);
        for (int j = 0; j < sk; j++) sum += std::exp(0.125 * scores[(size_t)r * sk + j] + mask[(size_t)b * sk + j] - mx);
        for (int j = 0; j < sk; j++) ref[(size_t)r * sk + j] = std::exp(0.125 * scores[(size_t)r * sk + j] + mask[(size_t)b * sk + j] - mx) / sum;
        double dot = 0;
        for (int j = 0; j < sk; j++) dot += (double)dp[(size_t)r * sk + j] * probs[(size_t)r * sk + j];
        for (int j = 0; j < sk; j++) dref[(size_t)r * sk + j] = 0.125 * probs[(size_t)r * sk + j] * (dp[(size_t)r * sk + j] - dot);
    }
    check("attention_softmax forward" + tag, probs, ref, 1e-6);
    launch(attention_softmax_backward_f32, {(unsigned)((rows + 7) / 8)}, B256, (const float*)probs.data(), (const float*)dp.data(), ds.data(), 0.125f, rows, sk);
    check("attention_softmax backward" + tag, ds, dref, 1e-5);
}

static void embedding(int count, int vocab, int dim, int shift)
{
    std::string tag = " " + std::to_string(count) + " ids, " + std::to_string(vocab) + "x" + std::to_string(dim) + " shift=" + std::to_string(shift);
    std::vector<int> ids(count);
    for (auto& id : ids) id = (int)(rng() % vocab);
    auto table = rnd((size_t)vocab * dim), out0 = rnd((size_t)count * dim), dout = rnd((size_t)count * dim), dt0 = rnd((size_t)vocab * dim);
    Buf T(table, shift), O(out0, shift);
    int status = 0;
    launch(embedding_forward_f32, {3}, B64, (const int*)ids.data(), (const float*)T.p, O.p, count, dim, vocab, 1, &status);
    std::vector<double> ref((size_t)count * dim);
    for (int i = 0; i < count; i++) for (int c = 0; c < dim; c++) ref[(size_t)i * dim + c] = (double)out0[(size_t)i * dim + c] + table[(size_t)ids[i] * dim + c];
    check("embedding forward accumulate" + tag, O.p, ref, 1e-7);
    std::vector<float> dtable = dt0;
    launch(embedding_backward_f32, {(unsigned)((count + 7) / 8), (unsigned)((dim + 255) / 256)}, B256, (const int*)ids.data(), (const float*)dout.data(), dtable.data(), count, dim, vocab);
    std::vector<float> seq = dt0;   // sequential float loop: the kernel must reproduce it bit for bit
    for (int i = 0; i < count; i++) for (int c = 0; c < dim; c++) seq[(size_t)ids[i] * dim + c] += dout[(size_t)i * dim + c];
    check("embedding backward (bitwise vs sequential)" + tag, dtable, std::vector<double>(seq.begin(), seq.end()), 0);
    ids[count / 2] = vocab;   // out of range: reported through status
    launch(embedding_forward_f32, {3}, B64, (const int*)ids.data(), (const float*)T.p, O.p, count, dim, vocab, 0, &status);
    check("embedding bad id raises status" + tag, std::vector<float>{(float)status}, {1.0}, 0);
}

static void dropout(int n, float p, unsigned long long counter)
{
    std::string tag = " n=" + std::to_string(n) + " p=" + std::to_string(p) + " counter=" + std::to_string(counter);
    auto x = rnd(n);
    std::vector<float> y(n);
    launch(dropout_f32, {2}, B64, (const float*)x.data(), y.data(), p, 99ULL, 7ULL, counter, (i64)n);
    std::vector<double> ref(n);
    for (int i = 0; i < n; i++) ref[i] = philox_uniform(99, 7, counter + i) >= p ? (double)(x[i] / (1.0f - p)) : 0.0;
    check("dropout" + tag, y, ref, 0);
}

static void crossentropy(int rows, int classes)
{
    std::string tag = " " + std::to_string(rows) + "x" + std::to_string(classes);
    auto logits = rnd((size_t)rows * classes, 10);
    std::vector<int> targets(rows);
    for (int r = 0; r < rows; r++) targets[r] = r % 4 == 3 ? -100 : (int)(rng() % classes);
    std::vector<float> losses(rows), dl((size_t)rows * classes);
    int status = 0;
    dim3 block{classes >= 256 ? 256u : 64u, 1, 1};
    launch(crossentropy_forward_f32, {(unsigned)rows}, block, (const float*)logits.data(), (const int*)targets.data(), losses.data(), rows, classes, -100, &status);
    std::vector<double> lref(rows), dref((size_t)rows * classes);
    for (int r = 0; r < rows; r++)
    {
        if (targets[r] == -100) continue;
        const float* x = logits.data() + (size_t)r * classes;
        double mx = -1e300, s = 0;
        for (int j = 0; j < classes; j++) mx = std::max(mx, (double)x[j]);
        for (int j = 0; j < classes; j++) s += std::exp(x[j] - mx);
        lref[r] = std::log(s) + mx - x[targets[r]];
        for (int j = 0; j < classes; j++) dref[(size_t)r * classes + j] = 0.25 * (std::exp(x[j] - mx) / s - (j == targets[r]));
    }
    if (classes > 1) check("crossentropy forward" + tag, losses, lref, 1e-6);
    launch(crossentropy_backward_f32, {(unsigned)rows}, block, (const float*)logits.data(), (const int*)targets.data(), logits.data(), rows, classes, -100, 0.25f, &status);
    check("crossentropy backward in place" + tag, logits, dref, 1e-6);
    check("crossentropy status" + tag, std::vector<float>{(float)status}, {0.0}, 0);
}

static void adamw(int n, bool masked, float maxNorm, int shift = 0)
{
    std::string tag = " n=" + std::to_string(n) + (masked ? " masked" : "") + " clip=" + std::to_string(maxNorm) + " shift=" + std::to_string(shift);
    auto param0 = rnd(n), grad0 = rnd(n), m0 = rnd(n, 0.1f), v0 = rnd(n, 0.01f);
    for (auto& x : v0) x = std::fabs(x);
    Buf P(param0, shift), G(grad0, shift), M(m0, shift), V(v0, shift);
    auto param = param0, grad = grad0, m = m0, v = v0;
    std::vector<unsigned char> mask(n, 1);
    if (masked) for (auto& b : mask) b = rng() % 2;
    double normSq = 0;
    for (float g : grad) normSq += (double)g * g;
    float normSqF = (float)normSq;
    const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-6f, wd = 0.01f;
    const int step = 7;
    double bc1 = 1 - std::pow(0.9, step), bc2 = 1 - std::pow(0.999, step);
    double clip = maxNorm > 0 ? std::min(1.0, maxNorm / std::sqrt(normSq)) : 1.0;
    std::vector<double> rp(n), rm(n), rv(n);
    for (int i = 0; i < n; i++)
    {
        if (!mask[i]) { rp[i] = rm[i] = rv[i] = 0; continue; }
        double g = grad[i] * clip;
        rm[i] = (double)b1 * m[i] + (1 - (double)b1) * g;
        rv[i] = (double)b2 * v[i] + (1 - (double)b2) * g * g;
        rp[i] = param[i] * (1 - (double)lr * wd) - lr * (rm[i] / bc1) / (std::sqrt(rv[i] / bc2) + eps);
    }
    launch(adamw_f32, {2}, B64, P.p, G.p, M.p, V.p, masked ? (const unsigned char*)mask.data() : (const unsigned char*)nullptr,
           (const float*)&normSqF, lr, b1, b2, eps, wd, (float)bc1, (float)bc2, maxNorm, (i64)n);
    check("adamw param" + tag, P.p, rp, 1e-6);
    check("adamw m" + tag, M.p, rm, 1e-6);
    check("adamw v" + tag, V.p, rv, 1e-6);
    std::vector<double> rg(n);
    for (int i = 0; i < n; i++) rg[i] = mask[i] ? grad[i] : 0.0;
    check("adamw grad (only masked elements change)" + tag, G.p, rg, 0);
}

// ---- radixselect.cu: driven as CudaBackend.RadixSelect / RadixKeepMask drive it, checked against
// a sorted copy of the keys (the definition the CPU RadixSelect is tested against too).
struct Selected { unsigned int key; long long below, equal; };

static std::vector<Selected> radix_select_emulated(const std::vector<float>& w, const std::vector<long long>& ranks, long long& firstBad, unsigned grid, int shift = 0)
{
    i64 n = (i64)w.size();
    Buf shifted(w, shift);   // shift = 1: keys not 16-byte aligned, the scalar loop
    int levels = (int)ranks.size();
    std::vector<u64> state(RS_STATE_WORDS, 0), hist((size_t)RS_MAX_LEVELS * 2048);
    state[RS_NSLOTS] = 1;
    state[RS_FIRST_BAD] = (u64)n;
    for (int j = 0; j < levels; j++) state[RS_LEVEL(j)] = (u64)ranks[j];
    const unsigned int* keys = (const unsigned int*)shifted.p;
    for (int pass = 0; pass < 3; pass++)
    {
        std::fill(hist.begin(), hist.end(), 0);
        if (pass == 0) launch(radix_hist_first, {grid}, B256, keys, n, hist.data(), state.data());
        else launch(radix_hist_next, {grid}, B256, keys, n, (const u64*)state.data(), pass, hist.data());
        launch(radix_select_digit, {1}, dim3{(unsigned)(32 * levels), 1, 1}, (const u64*)hist.data(), state.data(), levels, pass);
    }
    firstBad = (long long)state[RS_FIRST_BAD];
    std::vector<Selected> out(levels);
    for (int j = 0; j < levels; j++) out[j] = {(unsigned int)state[RS_LEVEL(j) + 2], (long long)state[RS_LEVEL(j) + 1], (long long)state[RS_LEVEL(j) + 3]};
    return out;
}

static std::vector<unsigned char> keep_mask_emulated(const std::vector<float>& w, const Selected& s, long long pruned, unsigned grid)
{
    i64 n = (i64)w.size();
    const unsigned int* keys = (const unsigned int*)w.data();
    long long ties = pruned == 0 ? 0 : pruned - s.below;
    bool partial = ties > 0 && ties < s.equal;
    i64 tiles = (n + RS_TILE - 1) / RS_TILE;
    std::vector<unsigned int> counts(tiles);
    std::vector<u64> before(tiles);
    std::vector<unsigned char> keep(n, 7);
    if (partial)
    {
        launch(radix_count_equal, {grid}, B256, keys, n, s.key, counts.data());
        launch(radix_scan_tiles, {1}, dim3{1024, 1, 1}, (const unsigned int*)counts.data(), before.data(), tiles);
    }
    launch(radix_keep_mask, {grid}, B256, keys, n, keep.data(), s.key, (i64)ties, partial ? (const u64*)before.data() : (const u64*)nullptr);
    return keep;
}

static unsigned int abs_bits(float x) { unsigned int u; std::memcpy(&u, &x, 4); return u & 0x7fffffffu; }

static void radix(const std::string& name, const std::vector<float>& w, const std::vector<long long>& pruneCounts, unsigned grid, int shift = 0)
{
    i64 n = (i64)w.size();
    std::string tag = " " + name + " n=" + std::to_string(n) + " grid=" + std::to_string(grid) + " shift=" + std::to_string(shift);
    std::vector<unsigned int> sorted(n);
    for (i64 i = 0; i < n; i++) sorted[i] = abs_bits(w[i]);
    std::sort(sorted.begin(), sorted.end());
    std::vector<long long> ranks;
    for (long long k : pruneCounts) ranks.push_back(std::max(k, 1LL) - 1);
    long long firstBad = -1;
    auto sel = radix_select_emulated(w, ranks, firstBad, grid, shift);
    bool ok = firstBad == n;
    for (size_t j = 0; j < ranks.size(); j++)
    {
        unsigned int key = sorted[ranks[j]];
        long long below = std::lower_bound(sorted.begin(), sorted.end(), key) - sorted.begin();
        long long equal = std::upper_bound(sorted.begin(), sorted.end(), key) - sorted.begin() - below;
        ok = ok && sel[j].key == key && sel[j].below == below && sel[j].equal == equal;
        if (sel[j].key != key || sel[j].below != below || sel[j].equal != equal)
            std::printf("  level %zu rank %lld: got key %08x below %lld equal %lld, want %08x %lld %lld\n", j, ranks[j],
                        sel[j].key, sel[j].below, sel[j].equal, key, below, equal);
    }
    (ok ? passed : failed)++;
    std::printf("%s radix select %zu level(s)%s\n", ok ? "ok  " : "FAIL", ranks.size(), tag.c_str());
    // Keep masks: the pruned set is the first k of the order (|w| bits, index).
    std::vector<i64> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](i64 a, i64 b) { return abs_bits(w[a]) < abs_bits(w[b]); });
    for (size_t j = 0; j < ranks.size(); j++)
    {
        std::vector<unsigned char> want(n, 1);
        for (long long r = 0; r < pruneCounts[j]; r++) want[order[r]] = 0;
        auto got = keep_mask_emulated(w, sel[j], pruneCounts[j], grid);
        bool same = got == want;
        (same ? passed : failed)++;
        std::printf("%s radix keep mask k=%lld%s\n", same ? "ok  " : "FAIL", pruneCounts[j], tag.c_str());
    }
}

static std::vector<long long> sweep_counts(i64 n)
{
    std::vector<long long> k;
    for (int l = 1; l <= 9; l++) k.push_back(std::min<long long>(n, (long long)std::llround(0.1 * l * n)));
    return k;
}

static void radix_cases()
{
    std::normal_distribution<float> normal(0.0f, 0.04f);
    auto gauss = [&](i64 n) { std::vector<float> v(n); for (auto& x : v) x = normal(rng); return v; };
    radix("one", {-0.25f}, {0, 1}, 1);
    radix("seven", gauss(7), {0, 1, 3, 6, 7}, 2);
    radix("normal", gauss(1003), {0, 1, 501, 1002, 1003}, 3);
    radix("normal", gauss(1003), {0, 1, 501, 1002, 1003}, 3, 1);
    radix("normal", gauss(6), {0, 2, 6}, 1, 2);
    radix("normal sweep", gauss(10007), sweep_counts(10007), 4);   // 9 distinct prefixes: shared and global sub-histograms
    radix("all equal", std::vector<float>(9001, 0.5f), {0, 1, 4500, 9000, 9001}, 3);
    std::vector<float> signs(9001);
    for (auto& x : signs) x = rng() % 2 ? 0.5f : -0.5f;
    radix("all equal magnitude, both signs", signs, {1, 5000, 8999}, 2);
    const float levels[] = {0.0f, -0.0f, 1e-3f, -1e-3f, 0.5f, -0.5f, 2.0f};
    std::vector<float> ties(12289);
    for (auto& x : ties) x = levels[rng() % 7];
    radix("many ties", ties, sweep_counts((i64)ties.size()), 3);
    std::vector<float> zeros(4099);
    for (auto& x : zeros) x = rng() % 2 ? 0.0f : -0.0f;
    radix("+0 and -0", zeros, {0, 1, 2049, 4099}, 2);
    std::vector<float> denormal(2053);
    for (auto& x : denormal) { unsigned int b = (rng() % 5000) | (rng() % 2 ? 0x80000000u : 0u); std::memcpy(&x, &b, 4); }
    denormal[17] = 1e-38f;
    radix("denormals", denormal, {0, 1, 1026, 2052, 2053}, 2);
    std::vector<long long> sixteen;
    for (int l = 0; l <= 15; l++) sixteen.push_back((long long)l * 333);
    radix("sixteen levels", gauss(5001), sixteen, 2);

    // Non-finite weights: the lowest bad index comes back.
    auto bad = gauss(5000);
    bad[3000] = std::nanf("");
    bad[777] = -INFINITY;
    bad[4000] = INFINITY;
    long long firstBad = -1;
    for (int shift : {0, 1})
    {
        radix_select_emulated(bad, {2500}, firstBad, 3, shift);
        bool found = firstBad == 777;
        (found ? passed : failed)++;
        std::printf("%s radix first non-finite index %lld (want 777) shift=%d\n", found ? "ok  " : "FAIL", firstBad, shift);
    }
}

static void nm_case(const std::string& name, const std::vector<float>& w, int m, int drop, unsigned grid)
{
    i64 n = (i64)w.size();
    std::vector<unsigned char> keep(n, 7), want(n, 1);
    long long firstBad = n;
    launch(nm_keep_mask, {grid}, B256, (const unsigned int*)w.data(), n, m, drop, keep.data(), &firstBad);
    long long wantBad = n;
    for (i64 g = 0; g < n; g += m)
    {
        std::vector<i64> order(m);
        std::iota(order.begin(), order.end(), g);
        std::stable_sort(order.begin(), order.end(), [&](i64 a, i64 b) { return abs_bits(w[a]) < abs_bits(w[b]); });
        for (int r = 0; r < drop; r++) want[order[r]] = 0;
    }
    for (i64 i = 0; i < n; i++) if (abs_bits(w[i]) >= 0x7f800000u) { wantBad = i; break; }
    bool ok = keep == want && firstBad == wantBad;
    (ok ? passed : failed)++;
    std::printf("%s nm_keep_mask %d:%d %s n=%lld first bad %lld\n", ok ? "ok  " : "FAIL", m - drop, m, name.c_str(), (long long)n, firstBad);
}

static void nm_cases()
{
    std::normal_distribution<float> normal(0.0f, 0.04f);
    for (auto [keepN, m] : {std::pair{2, 4}, {1, 4}, {2, 8}, {4, 8}, {3, 64}, {1, 2}})
    {
        std::vector<float> w((size_t)m * 37);
        for (auto& x : w) x = normal(rng);
        nm_case("normal", w, m, m - keepN, 2);
        const float levels[] = {0.0f, -0.0f, 0.25f, -0.25f};
        for (auto& x : w) x = levels[rng() % 4];
        nm_case("ties", w, m, m - keepN, 3);
    }
    std::vector<float> bad(64 * 8);
    for (auto& x : bad) x = normal(rng);
    bad[300] = -INFINITY;
    bad[100] = std::nanf("");
    nm_case("non-finite", bad, 8, 6, 2);
}

int main()
{
    for (int shift : {0, 1}) for (int n : {1, 7, 1001}) elementwise(n, shift);
    for (int shift : {0, 1}) { bias(1, 1, shift); bias(300, 13, shift); bias(129, 64, shift); }
    for (int shift : {0, 1}) { layernorm(1, 1, shift); layernorm(9, 13, shift); layernorm(17, 96, shift); layernorm(3, 300, shift); }
    for (int shift : {0, 1}) { heads(1, 1, 1, 1, shift); heads(2, 7, 3, 5, shift); heads(2, 3, 2, 8, shift); }
    softmax(1, 1, 1, 1); softmax(2, 3, 5, 7); softmax(1, 2, 3, 70);
    for (int shift : {0, 1}) { embedding(1, 1, 1, shift); embedding(37, 5, 13, shift); embedding(40, 7, 300, shift); embedding(20, 3, 8, shift); }
    dropout(1, 0.1f, 0); dropout(7, 0.5f, 5); dropout(1001, 0.1f, 0xFFFFFFFDULL); dropout(9, 1.0f, 1); dropout(64, 0.0f, 3);
    crossentropy(1, 1); crossentropy(9, 7); crossentropy(5, 1000);
    adamw(1, false, 0); adamw(1031, true, 0); adamw(500, true, 0.5f); adamw(1031, true, 0.5f, 1); adamw(37, false, 0, 1);
    radix_cases();
    nm_cases();
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
