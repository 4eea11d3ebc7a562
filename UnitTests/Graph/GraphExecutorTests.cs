using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Graph;
using MLNetQuant.Samples.Shared;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>The trainable graph: every zoo model, ResNet-18 and the shared Fashion models, imported and run op by op
/// on TorchSharp, compute what ONNX Runtime computes from the original file (within 1e-4 of the largest output), and
/// gradients reach the learnable initializers.</summary>
[TestClass]
public sealed class GraphExecutorTests
{
    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> Models => new[]
    {
        new object[] { "zoo/mobilenet_v2_w05_op11.onnx", new long[] { 2, 3, 96, 96 } },
        new object[] { "zoo/mobilenet_v3_small_op13.onnx", new long[] { 2, 3, 96, 96 } },
        new object[] { "zoo/squeezenet1_1_op9.onnx", new long[] { 2, 3, 96, 96 } },
        new object[] { "zoo/shufflenet_v2_x05_op12.onnx", new long[] { 2, 3, 96, 96 } },
        new object[] { "zoo/tiny_dbnet_op11_dynamic_hw.onnx", new long[] { 1, 3, 64, 96 } },
        new object[] { "fashion_cnn_fp32.onnx", new long[] { 4, 1, 28, 28 } },
        new object[] { "fashion_mlp_fp32.onnx", new long[] { 4, 1, 28, 28 } },
    };

    [TestMethod]
    [DynamicData(nameof(Models))]
    public void ImageModel_ComputesWhatOnnxRuntimeComputes(string file, long[] shape) =>
        AssertSameAsOnnxRuntime(ZooModels.Shared(file), shape, ZooModels.Noise((int)shape.Aggregate(1L, (a, b) => a * b), seed: 3));

    [TestMethod]
    public void ResNet18_ComputesWhatOnnxRuntimeComputes() =>
        // CNTK's net takes 0–255 pixels less the mean image.
        AssertSameAsOnnxRuntime(ResNetTiles.ModelPath, new long[] { 1, 3, 224, 224 }, ZooModels.Noise(3 * 224 * 224, seed: 5).Select(v => v * 50).ToArray());

    private void AssertSameAsOnnxRuntime(string path, long[] shape, float[] values)
    {
        var graph = Import(path, out var inputName);
        using var input = OrtValue.CreateTensorValueFromMemory(values, shape);
        var expected = ZooModels.Run(File.ReadAllBytes(path), new[] { (inputName, input) });
        float[] actual;
        using (no_grad())
        using (var x = tensor(values, shape))
        using (var y = graph.forward(x))
            actual = y.data<float>().ToArray();
        AssertClose(Path.GetFileName(path), expected, actual);
    }

    [TestMethod]
    public void TinyBert_ComputesWhatOnnxRuntimeComputes_FromTwoInt64Inputs()
    {
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var graph = Import(path, out _);
        CollectionAssert.AreEqual(new[] { "input_ids", "attention_mask" }, graph.InputNames.ToArray());
        var random = new Random(7);
        var ids = Enumerable.Range(0, 3 * 12).Select(_ => (long)random.Next(1, 2000)).ToArray();
        var mask = Enumerable.Range(0, 3 * 12).Select(i => i % 12 < 12 - i / 12 * 3 ? 1L : 0L).ToArray(); // rows padded by 0, 3, 6
        var shape = new long[] { 3, 12 };
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        var expected = ZooModels.Run(File.ReadAllBytes(path), new[] { ("input_ids", idsValue), ("attention_mask", maskValue) });
        float[] actual;
        using (no_grad())
        using (var idsTensor = tensor(ids, shape))
        using (var maskTensor = tensor(mask, shape))
        {
            var outputs = graph.Run(new[] { idsTensor, maskTensor });
            actual = outputs[0].data<float>().ToArray();
            foreach (var output in outputs) output.Dispose();
        }
        AssertClose("tiny_bert_op13.onnx", expected, actual);
    }

    [TestMethod]
    public void Gradients_ReachTheLearnableInitializers()
    {
        var graph = Import(ZooModels.Path("mobilenet_v2_w05_op11.onnx"), out _);
        using var x = tensor(ZooModels.Noise(2 * 3 * 96 * 96, seed: 1), new long[] { 2, 3, 96, 96 });
        using (var y = graph.forward(x))
        using (var loss = y.square().mean())
            loss.backward();
        var parameters = graph.named_parameters().ToList();
        var convWeights = graph.Nodes.Where(n => n.OpType == "Conv").Select(n => n.Weight).ToList();
        TestContext.WriteLine($"{parameters.Count} learnable tensors, {graph.buffers().Count()} constants, {convWeights.Count} convolutions");
        Assert.IsNotEmpty(convWeights);
        foreach (var weight in convWeights)
        {
            Assert.IsNotNull(weight.grad, "every conv weight gets a gradient");
            Assert.IsTrue(weight.grad.isfinite().all().item<bool>(), "finite gradients");
        }
        Assert.IsTrue(convWeights.Any(w => w.grad!.abs().sum().item<float>() > 0), "and they are not all zero");
    }

    [TestMethod]
    public void AnOpWithoutAnImplementation_IsNamedWithItsNode()
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(ZooModels.Shared("fashion_cnn_fp32.onnx")));
        OnnxImporter.Import(model, "fashion");
        model.Graph.Node[1].OpType = "Det"; // a real op the executor does not compute
        var e = Assert.ThrowsExactly<NotSupportedException>(() => new OnnxGraphModule(model, "'fashion'"));
        StringAssert.Contains(e.Message, $"node '{model.Graph.Node[1].Name}'");
        StringAssert.Contains(e.Message, "Det");
    }

    private static OnnxGraphModule Import(string path, out string inputName)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        OnnxImporter.Import(model, path);
        var graph = new OnnxGraphModule(model, path);
        inputName = graph.InputNames[0];
        graph.eval();
        return graph;
    }

    private void AssertClose(string file, float[] expected, float[] actual)
    {
        Assert.HasCount(expected.Length, actual, $"{file}: output size");
        var scale = expected.Max(MathF.Abs);
        var worst = expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second)) / scale;
        TestContext.WriteLine($"{file}: {expected.Length} outputs, largest difference {worst:E2} of the largest output");
        Assert.IsLessThanOrEqualTo(1e-4, worst, $"{file}: TorchSharp float = ONNX Runtime float within 1e-4 relative");
    }
}
