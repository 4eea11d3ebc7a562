using Microsoft.ML;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Configuration;
using MLNetQuant.Export;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Export;

/// <summary>Every algorithm's network, exported to QDQ ONNX, computes in ONNX Runtime what it computes in TorchSharp —
/// including the 4-bit grids stored in 8 bits, LSQ's learned steps, and the batch norms folded after quantization for
/// DoReFa and BNN.</summary>
[TestClass]
public sealed class ExportEquivalenceTests
{
    public TestContext TestContext { get; set; } = null!;

    private static QuantConfig WeightsAndInputs(int bits) =>
        new() { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = bits, OpTypes = { "default" } };

    public static IEnumerable<object[]> Algorithms()
    {
        yield return new object[] { "QAT W8A8 + ReLU output", (Func<QuantizationOptions>)(() => new QatOptions
        {
            Epochs = 2, Config = { WeightsAndInputs(8), new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 8, OpTypes = { "ReLU" } } },
        }) };
        yield return new object[] { "QAT W4A4", (Func<QuantizationOptions>)(() => new QatOptions { Epochs = 2, Config = { WeightsAndInputs(4) } }) };
        yield return new object[] { "LSQ W4A4", (Func<QuantizationOptions>)(() => new LsqOptions { Epochs = 2, Config = { WeightsAndInputs(4) } }) };
        yield return new object[] { "DoReFa W4", (Func<QuantizationOptions>)(() => new DoReFaOptions
        {
            Epochs = 2, Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 4, OpTypes = { "default" } } },
        }) };
        yield return new object[] { "BNN", (Func<QuantizationOptions>)(() => new BnnOptions
        {
            Epochs = 2, Optimizer = QuantOptimizer.Adam, LearningRate = 0.01,
            Config =
            {
                new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "Conv2d" } },
                new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpTypes = { "ReLU" } },
            },
        }) };
        yield return new object[] { "Observer W8A8", (Func<QuantizationOptions>)(() => new ObserverOptions { Config = { WeightsAndInputs(8) } }) };
        yield return new object[] { "Naive W8", (Func<QuantizationOptions>)(() => new NaiveOptions()) };
    }

    [TestMethod]
    [DynamicData(nameof(Algorithms))]
    public void OnnxRuntime_AgreesWithTorchSharp(string name, Func<QuantizationOptions> create)
    {
        var ml = new MLContext(seed: 3);
        var options = create();
        options.Model = TestData.SeededTinyCnn(3);
        options.InputShape = TestData.InputShape;
        options.Device = QuantDevice.Cpu;
        if (options is TrainingQuantizationOptions training && training.Optimizer == QuantOptimizer.Sgd) training.LearningRate = 0.01;
        var run = QuantizationRunner.Run(ml, options, TestData.Quadrants(ml, 512));
        var exported = QdqExporter.Export(run.Network, TestData.InputShape, run.Outputs, true, "Features", "Score");

        var rows = TestData.QuadrantRows(300, seed: 21);
        var flat = rows.SelectMany(r => r.Features).ToArray();
        using var session = new InferenceSession(exported.OnnxBytes);
        using var input = OrtValue.CreateTensorValueFromMemory(flat, new long[] { rows.Length, 64 });
        using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
        using var outputs = session.Run(runOptions, new[] { "Features" }, new[] { input }, new[] { "Score" });
        var onnx = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        using var x = tensor(flat, rows.Length, 1, 8, 8);
        using var expectedTensor = nn.functional.softmax(run.Network.call(x), 1);
        var expected = TestData.Values(expectedTensor);

        var agree = Enumerable.Range(0, rows.Length).Count(i => ArgMax(onnx, i) == ArgMax(expected, i));
        var maxDelta = onnx.Zip(expected).Max(p => Math.Abs(p.First - p.Second));
        var ops = ModelProto.Parser.ParseFrom(exported.OnnxBytes).Graph.Node.Select(n => n.OpType).Distinct();
        TestContext.WriteLine($"{name}: argmax agreement {agree}/{rows.Length}, max |Δp| {maxDelta:G3}; ops {string.Join(",", ops)}");
        Assert.IsGreaterThanOrEqualTo(0.99 * rows.Length, agree, name);
        Assert.IsLessThan(0.05, maxDelta, name);
        Assert.IsNotEmpty(exported.Report.Tensors, "the report lists the quantized tensors");
    }

    private static int ArgMax(float[] values, int row)
    {
        var best = 0;
        for (var i = 1; i < 4; i++) if (values[row * 4 + i] > values[row * 4 + best]) best = i;
        return best;
    }
}
