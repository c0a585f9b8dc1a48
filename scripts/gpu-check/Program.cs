using System.Collections;
using System.Diagnostics;
using System.Reflection;
using NUnit.Framework;

namespace NativeSparsity.GpuCheck;

/// <summary>
/// `gpu-check tests [PATTERN...]` runs the NUnit tests compiled into this program (the CUDA tests)
/// without the .NET SDK: it honours [Test], [TestCase], [TestCaseSource], [SetUp], [TearDown],
/// [OneTimeSetUp] and [OneTimeTearDown], reports Assert.Ignore as skipped with its reason, and ends
/// with "N passed, N failed, N skipped". A test runs when its "Fixture.Name" contains one of the
/// patterns (all when none is given) and none of the "!"-prefixed ones, so a GPU run can order the
/// fixtures by what they tell and leave out the host-only ones. `gpu-check nsparse ARGS` runs nsparse.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "nsparse") return NativeSparsity.Experiments.Program.Main(args[1..]);
        if (args.Length > 0 && args[0] == "tests") return RunTests(args[1..]);
        Console.Error.WriteLine("usage: gpu-check tests [PATTERN...] [!EXCLUDED...] | gpu-check nsparse ARGS");
        return 2;
    }

    private static int RunTests(string[] patterns)
    {
        var include = patterns.Where(p => !p.StartsWith('!')).ToArray();
        var exclude = patterns.Where(p => p.StartsWith('!')).Select(p => p[1..]).ToArray();
        bool Selected(string full) =>
            (include.Length == 0 || include.Any(p => full.Contains(p, StringComparison.OrdinalIgnoreCase)))
            && !exclude.Any(p => full.Contains(p, StringComparison.OrdinalIgnoreCase));
        int passed = 0, failed = 0, skipped = 0;
        var failures = new List<string>();
        var fixtures = typeof(Program).Assembly.GetTypes()
            .Where(t => t.IsClass && !t.IsAbstract && t.Namespace == "NativeSparsity.Tests.Cuda")
            .Where(t => t.GetMethods().Any(IsTest))
            .OrderBy(t => t.Name, StringComparer.Ordinal);
        foreach (var type in fixtures)
        {
            var cases = Cases(type).Where(c => Selected($"{type.Name}.{c.Name}")).ToList();
            if (cases.Count == 0) continue; // a fixture's one-time set-up (a GPU context) only for tests that run
            object fixture = Activator.CreateInstance(type)!;
            string? setupFailure = Invoke(fixture, Marked<OneTimeSetUpAttribute>(type));
            foreach (var (name, method, arguments) in cases)
            {
                string full = $"{type.Name}.{name}";
                var sw = Stopwatch.StartNew();
                string outcome; string? message;
                if (setupFailure != null) { outcome = "FAIL"; message = "OneTimeSetUp: " + setupFailure; }
                else (outcome, message) = RunOne(fixture, type, method, arguments);
                switch (outcome)
                {
                    case "PASS": passed++; break;
                    case "SKIP": skipped++; break;
                    default: failed++; failures.Add($"{full}: {message}"); break;
                }
                Console.WriteLine($"{outcome} {full} ({sw.Elapsed.TotalSeconds:F2} s){(message != null && outcome != "PASS" ? ": " + FirstLine(message) : "")}");
            }
            Invoke(fixture, Marked<OneTimeTearDownAttribute>(type));
        }
        if (failures.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine("failures:");
            foreach (string f in failures) Console.WriteLine("  " + f);
        }
        Console.WriteLine(skipped > 0 ? $"{passed} passed, {failed} failed, {skipped} skipped" : $"{passed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    private static bool IsTest(MethodInfo m) =>
        m.IsDefined(typeof(TestAttribute)) || m.IsDefined(typeof(TestCaseAttribute)) || m.IsDefined(typeof(TestCaseSourceAttribute));

    private static IEnumerable<MethodInfo> Marked<T>(Type type) where T : Attribute =>
        type.GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static).Where(m => m.IsDefined(typeof(T)));

    private static IEnumerable<(string Name, MethodInfo Method, object?[] Arguments)> Cases(Type type)
    {
        foreach (var method in type.GetMethods().Where(IsTest).OrderBy(m => m.MetadataToken))
        {
            if (method.IsDefined(typeof(TestAttribute)) && method.GetParameters().Length == 0)
                yield return (method.Name, method, []);
            foreach (var tc in method.GetCustomAttributes<TestCaseAttribute>())
                yield return ($"{method.Name}({string.Join(",", tc.Arguments)})", method, tc.Arguments);
            foreach (var src in method.GetCustomAttributes<TestCaseSourceAttribute>())
            {
                var member = type.GetMember(src.SourceName!, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static).Single();
                var source = member switch
                {
                    MethodInfo mi => (IEnumerable)mi.Invoke(null, null)!,
                    PropertyInfo pi => (IEnumerable)pi.GetValue(null)!,
                    FieldInfo fi => (IEnumerable)fi.GetValue(null)!,
                    _ => throw new InvalidOperationException($"test case source {src.SourceName} of {type.Name}"),
                };
                foreach (object? item in source)
                {
                    if (item is TestCaseData data)
                        yield return (data.TestName ?? $"{method.Name}({string.Join(",", data.Arguments)})", method, data.Arguments);
                    else if (item is object?[] array)
                        yield return ($"{method.Name}({string.Join(",", array)})", method, array);
                    else
                        yield return ($"{method.Name}({item})", method, [item]);
                }
            }
        }
    }

    private static (string Outcome, string? Message) RunOne(object fixture, Type type, MethodInfo method, object?[] arguments)
    {
        try
        {
            var parameters = method.GetParameters();
            var converted = new object?[parameters.Length];
            for (int i = 0; i < parameters.Length; i++)
            {
                object? a = arguments[i];
                converted[i] = a is IConvertible && a.GetType() != parameters[i].ParameterType
                    ? Convert.ChangeType(a, parameters[i].ParameterType, System.Globalization.CultureInfo.InvariantCulture)
                    : a;
            }
            foreach (var setup in Marked<SetUpAttribute>(type)) setup.Invoke(fixture, null);
            try { method.Invoke(fixture, converted); }
            finally { foreach (var teardown in Marked<TearDownAttribute>(type)) teardown.Invoke(fixture, null); }
            return ("PASS", null);
        }
        catch (Exception e)
        {
            while (e is TargetInvocationException { InnerException: { } inner }) e = inner;
            string name = e.GetType().Name;
            if (name.Contains("Ignore", StringComparison.Ordinal) || name.Contains("Inconclusive", StringComparison.Ordinal)) return ("SKIP", e.Message);
            if (name.Contains("Success", StringComparison.Ordinal)) return ("PASS", null);
            return ("FAIL", name.Contains("Assertion", StringComparison.Ordinal) ? e.Message : e.ToString());
        }
    }

    /// <summary>Runs fixture-level methods; returns the failure message of the first that throws.</summary>
    private static string? Invoke(object fixture, IEnumerable<MethodInfo> methods)
    {
        foreach (var m in methods)
        {
            try { m.Invoke(m.IsStatic ? null : fixture, null); }
            catch (Exception e) { return (e.InnerException ?? e).ToString(); }
        }
        return null;
    }
}
