using System.Diagnostics;
using System.Globalization;
using NativeSparsity.Engine.Backends.Cuda;
using NativeSparsity.Engine.Random;
using NUnit.Framework;

namespace NativeSparsity.Tests.Cuda;

/// <summary>
/// kernels/philox.cuh must draw exactly what engine/Random/Philox.cs draws. Without a GPU the header
/// is compiled for the host by the system's C++ compiler (the device qualifiers and __umulhi are
/// stubbed) and its uniforms and normals are compared bit for bit with the engine's.
/// </summary>
public class PhiloxHeaderTests
{
    private static readonly (ulong Seed, ulong Stream, ulong Index)[] Points =
    [
        (0, 0, 0), (42, 3, 1), (42, 3, 2), (42, 3, 7), (0x0123456789abcdefUL, 0x00000002_00000001UL, 0x5_0000_001DUL),
        (ulong.MaxValue, ulong.MaxValue, ulong.MaxValue - 4), (1234567890123UL, 77, 0xFFFF_FFFDUL), (9, 1, 1UL << 40),
    ];

    [Test]
    public void HostCompiledHeaderDrawsTheEnginesNumbers()
    {
        string? compiler = new[] { "/usr/bin/g++", "/usr/bin/clang++", "/usr/local/bin/g++" }.FirstOrDefault(File.Exists);
        if (compiler == null) Assert.Ignore("no host C++ compiler (g++ or clang++) to compile kernels/philox.cuh for the host");

        string dir = Path.Combine(Path.GetTempPath(), "nsparse-philox-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "philox.cuh"), KernelSources.Read("philox.cuh"));
            var main = new System.Text.StringBuilder();
            main.Append("""
                #include <cstdio>
                #include <cmath>
                #define __device__
                #define __forceinline__ inline
                static inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
                #include "philox.cuh"
                static void show(unsigned long long s, unsigned long long t, unsigned long long i) {
                  float u = philox_uniform(s, t, i), n = philox_normal(s, t, i);
                  unsigned int ub, nb; __builtin_memcpy(&ub, &u, 4); __builtin_memcpy(&nb, &n, 4);
                  std::printf("%08x %08x\n", ub, nb);
                }
                int main() {

                """);
            foreach (var (s, t, i) in Points) main.Append($"  show({s}ULL, {t}ULL, {i}ULL);\n");
            main.Append("  return 0;\n}\n");
            File.WriteAllText(Path.Combine(dir, "main.cpp"), main.ToString());

            string exe = Path.Combine(dir, "philox");
            Run(compiler, $"-O1 -std=c++17 -o {exe} main.cpp", dir, out _);
            Run(exe, "", dir, out string output);
            string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Has.Length.EqualTo(Points.Length));
            for (int p = 0; p < Points.Length; p++)
            {
                var (s, t, i) = Points[p];
                string[] words = lines[p].Split(' ');
                uint uniformBits = uint.Parse(words[0], NumberStyles.HexNumber), normalBits = uint.Parse(words[1], NumberStyles.HexNumber);
                Assert.That(uniformBits, Is.EqualTo(BitConverter.SingleToUInt32Bits(Philox.Uniform(s, t, i))), $"uniform at ({s}, {t}, {i})");
                Assert.That(normalBits, Is.EqualTo(BitConverter.SingleToUInt32Bits(Philox.Normal(s, t, i))), $"normal at ({s}, {t}, {i})");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static void Run(string file, string args, string dir, out string stdout)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi)!;
        stdout = p.StandardOutput.ReadToEnd();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.That(p.ExitCode, Is.Zero, $"{Path.GetFileName(file)} {args} failed:\n{stderr}");
    }
}
