using System.Text.Json;
using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Golden;

/// <summary>PyTorch conformance: one test per case of every golden file. Tolerances: scales 1e-6 relative,
/// zero-points exact, outputs 1e-6, gradients 1e-5 (LSQ scale/zero-point sums: 1e-5 relative or 1e-7 absolute).</summary>
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

    [TestMethod]
    public void GoldenFolder_HasCasesInEveryFile()
    {
        var cases = GoldenCatalog.Cases;
        var files = cases.Select(c => c.File).Distinct().ToList();
        TestContext.WriteLine($"Golden conformance: {cases.Count} cases in {files.Count} files from {GoldenCatalog.Directory}");
        Console.WriteLine($"Golden conformance: {cases.Count} cases in {files.Count} files");
        Assert.IsGreaterThanOrEqualTo(1, cases.Count, "no golden cases found");
        var jsonFiles = Directory.GetFiles(GoldenCatalog.Directory, "*.json").Length;
        Assert.AreEqual(jsonFiles, files.Count, "every *.json file must contribute cases");
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
        AssertClose(Values(c.Expected, "min_val"), range.MinVal!.data<float>().ToArray(), 0, 0, $"{c} min_val");
        AssertClose(Values(c.Expected, "max_val"), range.MaxVal!.data<float>().ToArray(), 0, 0, $"{c} max_val");
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
            AssertClose(Values(steps[i], "min_val"), observer.MinVal!.data<float>().ToArray(), 0, 0, $"{where} min_val");
            AssertClose(Values(steps[i], "max_val"), observer.MaxVal!.data<float>().ToArray(), 0, 0, $"{where} max_val");
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
        AssertClose(c.Expected.GetProperty("output"), y, 1e-6, 0, $"{c} output");
        AssertClose(c.Expected.GetProperty("grad_input"), x.grad!, 1e-5, 0, $"{c} grad_input");
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
        AssertClose(c.Expected.GetProperty("output"), y, 1e-6, 0, $"{c} output");
        AssertClose(c.Expected.GetProperty("grad_input"), x.grad!, 1e-5, 0, $"{c} grad_input");
        AssertClose(new[] { (float)c.Expected.GetProperty("grad_scale").GetDouble() }, scale.grad!.data<float>().ToArray(),
            1e-7, 1e-5, $"{c} grad_scale");
        AssertClose(new[] { (float)c.Expected.GetProperty("grad_zero_point").GetDouble() },
            zeroPoint.grad!.data<float>().ToArray(), 1e-7, 1e-5, $"{c} grad_zero_point");
    }

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
        AssertClose(Values(expected, "scale"), qParams.ScaleValues(), 0, 1e-6, $"{where} scale");
        CollectionAssert.AreEqual(Values(expected, "zero_point").Select(v => (long)v).ToArray(), qParams.ZeroPointValues(),
            $"{where} zero_point");
    }

    /// <summary>A scalar or tensor field as float32 values.</summary>
    private static float[] Values(JsonElement parent, string name)
    {
        var e = parent.GetProperty(name);
        return e.ValueKind == JsonValueKind.Object ? GoldenTensor.Parse(e).Floats : new[] { (float)e.GetDouble() };
    }

    private static void AssertClose(JsonElement expected, Tensor actual, double absolute, double relative, string what)
    {
        var golden = GoldenTensor.Parse(expected);
        CollectionAssert.AreEqual(golden.Shape, actual.shape, $"{what}: shape");
        AssertClose(golden.Floats, actual.detach().cpu().data<float>().ToArray(), absolute, relative, what);
    }

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
