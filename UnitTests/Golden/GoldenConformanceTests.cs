using System.Text.Json;
using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Golden;

/// <summary>PyTorch conformance: one test per case of every golden file. Bit-exact (same float32 bits): observer
/// min/max, scales, zero-points, fake-quant and LSQ outputs, LSQ input gradients. Fake-quant input gradients: equal
/// float32 values (PyTorch's masked elements are dy·0, so −0 where dy &lt; 0; MLNetQuant's are +0). LSQ per-element
/// scale and zero-point gradients: bit-exact where the upstream gradient is ±2^k (e.g. all ones), otherwise within
/// 6 ulps (MLNetQuant multiplies by dy last, PyTorch first; 2 ulps observed). LSQ gradient sums: 1e-5 relative or 1e-7 absolute, because
/// PyTorch's float32 reduction order is unspecified (golden README).</summary>
[TestClass]
public sealed class GoldenConformanceTests
{
    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> CaseKeys()
    {
        var cases = GoldenCatalog.Cases;
        for (var i = 0; i < cases.Count; i++) yield return new object[] { cases[i].File, cases[i].Id, i + 1, cases.Count };
    }

    public static string CaseName(System.Reflection.MethodInfo method, object[] data) =>
        $"Golden [{data[2]}/{data[3]}] {Path.GetFileNameWithoutExtension((string)data[0])}/{data[1]}";

    /// <summary>The shipped folder (../shared/golden) holds 45 cases; fewer means a file or case went missing.</summary>
    private const int ShippedCaseCount = 45;

    [TestMethod]
    public void GoldenFolder_EveryCaseInEveryFile_IsATest()
    {
        // Counted straight from the JSON, independently of GoldenCatalog, and compared with what DynamicData gets.
        var jsonFiles = Directory.GetFiles(GoldenCatalog.Directory, "*.json");
        var inFiles = 0;
        foreach (var path in jsonFiles)
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            var count = document.RootElement.GetProperty("cases").GetArrayLength();
            Assert.IsGreaterThan(0, count, $"{Path.GetFileName(path)} has no cases");
            inFiles += count;
        }
        var discovered = CaseKeys().Select(k => ((string)k[0], (string)k[1])).ToList();
        TestContext.WriteLine($"Golden conformance: {discovered.Count} test cases, {inFiles} cases in {jsonFiles.Length} files " +
            $"from {GoldenCatalog.Directory}");
        Assert.AreEqual(inFiles, discovered.Count, "one Golden test per case in the folder's JSON files");
        Assert.AreEqual(discovered.Count, discovered.Distinct().Count(), "case ids are unique within a file");
        Assert.AreEqual(jsonFiles.Length, discovered.Select(k => k.Item1).Distinct().Count(), "every *.json file contributes cases");
        if (string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(GoldenCatalog.DirectoryVariable)))
            Assert.IsGreaterThanOrEqualTo(ShippedCaseCount, discovered.Count, "the shipped golden folder's cases");
    }

    [TestMethod]
    [DynamicData(nameof(CaseKeys), DynamicDataDisplayName = nameof(CaseName))]
    public void Golden(string file, string id, int index, int count)
    {
        var c = GoldenCatalog.Find(file, id);
        using var scope = NewDisposeScope();
        switch (c.Category)
        {
            case "minmax_observer_per_tensor":
            case "per_channel_minmax_observer":
                CheckMinMaxObserver(c);
                break;
            case "moving_average_minmax_observer":
                CheckMovingAverageObserver(c);
                break;
            case "fake_quantize_per_tensor_affine":
            case "fake_quantize_per_channel_affine":
                CheckFakeQuantize(c);
                break;
            case "fake_quantize_learnable_per_tensor_affine":
                CheckLearnableFakeQuantize(c);
                break;
            default:
                Assert.Fail($"Golden case {c} has category '{c.Category}', which this suite does not know how to run.");
                break;
        }
    }

    private static void CheckMinMaxObserver(GoldenCase c)
    {
        var spec = SpecFrom(c.Params);
        using QuantObserver observer = spec.Scheme.IsPerChannel()
            ? new PerChannelMinMaxObserver(spec)
            : new MinMaxObserver(spec);
        observer.Observe(c.Tensor("input").ToFloatTensor());
        var range = (RangeObserver)observer;
        AssertBitExact(Values(c.Expected, "min_val"), range.MinVal!.data<float>().ToArray(), $"{c} min_val");
        AssertBitExact(Values(c.Expected, "max_val"), range.MaxVal!.data<float>().ToArray(), $"{c} max_val");
        using var qParams = observer.ComputeQParams();
        AssertQParams(c.Expected, qParams, c.ToString());
    }

    private static void CheckMovingAverageObserver(GoldenCase c)
    {
        var spec = SpecFrom(c.Params);
        using var observer = new MovingAverageMinMaxObserver(spec, c.Params.GetProperty("averaging_constant").GetDouble());
        var batches = c.Json.GetProperty("inputs").EnumerateArray().Select(GoldenTensor.Parse).ToList();
        var steps = c.Expected.GetProperty("steps").EnumerateArray().ToList();
        Assert.HasCount(batches.Count, steps);
        for (var i = 0; i < batches.Count; i++)
        {
            observer.Observe(batches[i].ToFloatTensor());
            var where = $"{c} after batch {i}";
            AssertBitExact(Values(steps[i], "min_val"), observer.MinVal!.data<float>().ToArray(), $"{where} min_val");
            AssertBitExact(Values(steps[i], "max_val"), observer.MaxVal!.data<float>().ToArray(), $"{where} max_val");
            using var qParams = observer.ComputeQParams();
            AssertQParams(steps[i], qParams, where);
        }
    }

    private static void CheckFakeQuantize(GoldenCase c)
    {
        var p = c.Params;
        var qMin = p.GetProperty("quant_min").GetInt64();
        var qMax = p.GetProperty("quant_max").GetInt64();
        var x = c.Tensor("input").ToFloatTensor(requiresGrad: true);
        Tensor y;
        if (p.TryGetProperty("axis", out var axis))
        {
            var scale = GoldenTensor.Parse(p.GetProperty("scale")).ToFloatTensor();
            var zeroPoint = tensor(GoldenTensor.Parse(p.GetProperty("zero_point")).Longs);
            y = FakeQuantize.PerChannel(x, scale, zeroPoint, axis.GetInt32(), qMin, qMax);
        }
        else
        {
            y = FakeQuantize.PerTensor(x, (float)p.GetProperty("scale").GetDouble(), p.GetProperty("zero_point").GetInt64(),
                qMin, qMax);
        }
        y.backward(new[] { c.Tensor("grad_output").ToFloatTensor() });
        AssertBitExact(c.Expected.GetProperty("output"), y, $"{c} output");
        AssertEqualValues(c.Expected.GetProperty("grad_input"), x.grad!, $"{c} grad_input");
    }

    private static void CheckLearnableFakeQuantize(GoldenCase c)
    {
        var p = c.Params;
        var x = c.Tensor("input").ToFloatTensor(requiresGrad: true);
        var scale = tensor(new[] { (float)p.GetProperty("scale").GetDouble() }, requires_grad: true);
        var zeroPoint = tensor(new[] { (float)p.GetProperty("zero_point").GetDouble() }, requires_grad: true);
        var qMax = p.GetProperty("quant_max").GetInt64();
        var gradFactor = p.GetProperty("grad_factor").GetDouble();
        Assert.AreEqual(gradFactor, LearnableFakeQuantize.GradFactor(p.GetProperty("numel").GetInt64(), qMax), 1e-15,
            $"{c} grad_factor formula");
        var y = LearnableFakeQuantize.Apply(x, scale, zeroPoint, p.GetProperty("quant_min").GetInt64(), qMax, gradFactor);
        y.backward(new[] { c.Tensor("grad_output").ToFloatTensor() });
        AssertBitExact(c.Expected.GetProperty("output"), y, $"{c} output");
        AssertBitExact(c.Expected.GetProperty("grad_input"), x.grad!, $"{c} grad_input");
        // The sums: PyTorch's float32 reduction order is unspecified (golden README), so a tolerance.
        AssertClose(new[] { (float)c.Expected.GetProperty("grad_scale").GetDouble() }, scale.grad!.data<float>().ToArray(),
            1e-7, 1e-5, $"{c} grad_scale");
        AssertClose(new[] { (float)c.Expected.GetProperty("grad_zero_point").GetDouble() },
            zeroPoint.grad!.data<float>().ToArray(), 1e-7, 1e-5, $"{c} grad_zero_point");

        // Each element's contribution to those sums (the op on one element at a time, as the generator did): bit-exact
        // where multiplying by dy is exact in any order (|dy| a power of two, e.g. all ones). Otherwise PyTorch computes
        // ((dy·e)·(1/s))·g and MLNetQuant ((e·(1/s))·g)·dy: three float32 roundings in another order, at most 6 ulps
        // apart (3 half-ulp roundings each way); 2 ulps is the most the shipped random-dy case shows.
        var debug = c.Expected.GetProperty("debug");
        var xs = c.Tensor("input").Floats;
        var dys = c.Tensor("grad_output").Floats;
        var (scales, zeroPoints) = (new float[xs.Length], new float[xs.Length]);
        for (var i = 0; i < xs.Length; i++)
        {
            using var element = NewDisposeScope();
            var s = tensor(new[] { (float)p.GetProperty("scale").GetDouble() }, requires_grad: true);
            var z = tensor(new[] { (float)p.GetProperty("zero_point").GetDouble() }, requires_grad: true);
            LearnableFakeQuantize.Apply(tensor(new[] { xs[i] }), s, z, p.GetProperty("quant_min").GetInt64(), qMax, gradFactor)
                .backward(new[] { tensor(new[] { dys[i] }) });
            scales[i] = s.grad!.item<float>();
            zeroPoints[i] = z.grad!.item<float>();
        }
        var ulps = dys.Select(dy => IsPowerOfTwo(Math.Abs(dy)) ? 0 : 6).ToArray();
        AssertWithinUlps(Values(debug, "grad_scale_per_element"), scales, ulps, $"{c} grad_scale per element");
        AssertWithinUlps(Values(debug, "grad_zero_point_per_element"), zeroPoints, ulps, $"{c} grad_zero_point per element");
    }

    private static bool IsPowerOfTwo(float v) => float.IsNormal(v) && (BitConverter.SingleToInt32Bits(v) & 0x7FFFFF) == 0;

    private static QuantSpec SpecFrom(JsonElement p)
    {
        var dtype = p.GetProperty("dtype").GetString() switch
        {
            "qint8" => QuantDtype.Int,
            "quint8" => QuantDtype.UInt,
            var other => throw new AssertFailedException($"unknown golden dtype '{other}'"),
        };
        var scheme = p.GetProperty("qscheme").GetString() switch
        {
            "per_tensor_affine" => QuantScheme.PerTensorAffine,
            "per_tensor_symmetric" => QuantScheme.PerTensorSymmetric,
            "per_channel_affine" => QuantScheme.PerChannelAffine,
            "per_channel_symmetric" => QuantScheme.PerChannelSymmetric,
            var other => throw new AssertFailedException($"unknown golden qscheme '{other}'"),
        };
        var kind = p.GetProperty("reduce_range").GetBoolean() ? QuantRangeKind.ReduceRange : QuantRangeKind.Full;
        var axis = p.TryGetProperty("ch_axis", out var a) ? a.GetInt32() : 0;
        var spec = new QuantSpec(dtype, 8, scheme, kind, axis);
        Assert.AreEqual(p.GetProperty("quant_min").GetInt64(), spec.Range.QMin, "quant_min of the spec");
        Assert.AreEqual(p.GetProperty("quant_max").GetInt64(), spec.Range.QMax, "quant_max of the spec");
        return spec;
    }

    private static void AssertQParams(JsonElement expected, QParams qParams, string where)
    {
        AssertBitExact(Values(expected, "scale"), qParams.ScaleValues(), $"{where} scale");
        CollectionAssert.AreEqual(Values(expected, "zero_point").Select(v => (long)v).ToArray(), qParams.ZeroPointValues(),
            $"{where} zero_point");
    }

    /// <summary>A scalar or tensor field as float32 values.</summary>
    private static float[] Values(JsonElement parent, string name)
    {
        var e = parent.GetProperty(name);
        return e.ValueKind == JsonValueKind.Object ? GoldenTensor.Parse(e).Floats : new[] { (float)e.GetDouble() };
    }

    private static float[] Actual(JsonElement expected, Tensor actual, string what, out float[] golden)
    {
        var parsed = GoldenTensor.Parse(expected);
        CollectionAssert.AreEqual(parsed.Shape, actual.shape, $"{what}: shape");
        golden = parsed.Floats;
        return actual.detach().cpu().data<float>().ToArray();
    }

    private static void AssertBitExact(JsonElement expected, Tensor actual, string what)
    {
        var values = Actual(expected, actual, what, out var golden);
        AssertBitExact(golden, values, what);
    }

    private static void AssertEqualValues(JsonElement expected, Tensor actual, string what)
    {
        var values = Actual(expected, actual, what, out var golden);
        Assert.HasCount(golden.Length, values, $"{what}: length");
        for (var i = 0; i < golden.Length; i++)
            if (!(golden[i] == values[i])) // 0 tolerance; only −0 versus +0 may differ in the bits
                Assert.Fail($"{what}[{i}]: expected {golden[i]:R}, got {values[i]:R}");
    }

    /// <summary>The same float32 bits, element by element (−0 and +0 differ; NaN never equals).</summary>
    private static void AssertBitExact(float[] expected, float[] actual, string what) =>
        AssertWithinUlps(expected, actual, new int[expected.Length], what);

    private static void AssertWithinUlps(float[] expected, float[] actual, int[] maxUlps, string what)
    {
        Assert.HasCount(expected.Length, actual, $"{what}: length");
        for (var i = 0; i < expected.Length; i++)
        {
            int e = BitConverter.SingleToInt32Bits(expected[i]), a = BitConverter.SingleToInt32Bits(actual[i]);
            if (e == a) continue;
            var ulps = Math.Abs(Ordered(e) - Ordered(a));
            if (maxUlps[i] == 0 || float.IsNaN(actual[i]) || ulps > maxUlps[i])
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R} (0x{e:X8}), got {actual[i]:R} (0x{a:X8}), " +
                    $"{ulps} ulp apart, {maxUlps[i]} allowed");
        }
    }

    // Float bits as integers in the order of the floats they encode.
    private static long Ordered(int bits) => bits < 0 ? (long)int.MinValue - bits : bits;

    private static void AssertClose(float[] expected, float[] actual, double absolute, double relative, string what)
    {
        Assert.HasCount(expected.Length, actual, $"{what}: length");
        for (var i = 0; i < expected.Length; i++)
        {
            var tolerance = Math.Max(absolute, relative * Math.Abs(expected[i]));
            if (Math.Abs((double)expected[i] - actual[i]) > tolerance || float.IsNaN(actual[i]))
                Assert.Fail($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (tolerance {tolerance:G3})");
        }
    }
}
