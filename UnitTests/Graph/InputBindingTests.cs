using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Onnx;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Training;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>Inputs and outputs by name: each graph input is fed from its column (or a mapped one) of the element type
/// it takes, any outputs become columns, the schema is known before Fit, and mistakes are named.</summary>
[TestClass]
public sealed class InputBindingTests
{
    // x float [N, 4] and k int64 [N, 4]: y = (x + float(k)) · W (3 outputs), z = Relu(x).
    private static byte[] TwoInputModel()
    {
        var builder = new OnnxGraphBuilder();
        var x = builder.Input("x", 4);
        var random = new Random(1);
        var weight = builder.Initializer("w", Enumerable.Range(0, 12).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), 4, 3);
        var model = global::Onnx.ModelProto.Parser.ParseFrom(Build(builder, x, weight));
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    }

    private static byte[] Build(OnnxGraphBuilder builder, string x, string weight)
    {
        var graphBytes = new Func<byte[]>(() =>
        {
            var k = builder.Node("Cast", "cast", new[] { "k" }, new Dictionary<string, object> { ["to"] = 1L });
            var sum = builder.Node("Add", "add", new[] { x, k });
            builder.Output("y", builder.Node("MatMul", "matmul", new[] { sum, weight }), OnnxGraphBuilder.ElementType.Float, 3);
            builder.Output("z", builder.Node("Relu", "relu", new[] { x }), OnnxGraphBuilder.ElementType.Float, 4);
            return builder.Build(13, new Dictionary<string, string>());
        })();
        var model = global::Onnx.ModelProto.Parser.ParseFrom(graphBytes);
        var shape = new global::Onnx.TensorShapeProto();
        shape.Dim.Add(new global::Onnx.TensorShapeProto.Types.Dimension { DimParam = "N" });
        shape.Dim.Add(new global::Onnx.TensorShapeProto.Types.Dimension { DimValue = 4 });
        model.Graph.Input.Add(new global::Onnx.ValueInfoProto
        {
            Name = "k",
            Type = new global::Onnx.TypeProto { TensorType = new global::Onnx.TypeProto.Types.Tensor { ElemType = 7, Shape = shape } },
        });
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    }

    private sealed class Row
    {
        [VectorType(4)]
        public float[] Pixels { get; set; } = Array.Empty<float>();

        [VectorType(4)]
        public long[] k { get; set; } = Array.Empty<long>();
    }

    private sealed class FloatRow
    {
        [VectorType(4)]
        public float[] Pixels { get; set; } = Array.Empty<float>();

        [VectorType(4)]
        public float[] Pixels2 { get; set; } = Array.Empty<float>();
    }

    private sealed class Output
    {
        public float[] Scores { get; set; } = Array.Empty<float>();

        public float[] Hidden { get; set; } = Array.Empty<float>();
    }

    private static Row[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => new Row
        {
            Pixels = Enumerable.Range(0, 4).Select(_ => (float)random.NextDouble()).ToArray(),
            k = Enumerable.Range(0, 4).Select(_ => (long)random.Next(0, 3)).ToArray(),
        }).ToArray();
    }

    private static OnnxQuantizationOptions Options() => new()
    {
        ModelBytes = TwoInputModel(), Calibration = CalibrationMethod.MinMax,
        InputColumns = { ["x"] = "Pixels" },
        OutputColumns = { ["y"] = "Scores", ["z"] = "Hidden" },
    };

    [TestMethod]
    public void EachInputReadsItsColumn_AndEachChosenOutputBecomesOne()
    {
        var ml = new MLContext(seed: 1);
        var rows = Rows(64, 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        var estimator = ml.Quantization().Observer(Options());
        var before = estimator.GetOutputSchema(SchemaShapes.Of(data.Schema));
        using var model = estimator.Fit(data);
        CollectionAssert.AreEqual(new[] { "Pixels", "k" }, model.InputColumnNames.ToArray());
        CollectionAssert.AreEqual(new[] { "Scores", "Hidden" }, model.OutputColumnNames.ToArray());
        var scored = model.Transform(data);
        foreach (var name in new[] { "Scores", "Hidden" })
        {
            var shape = before.Single(c => c.Name == name);
            var column = scored.Schema[name];
            Assert.AreEqual(((VectorDataViewType)column.Type).ItemType, shape.ItemType, name);
            Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, shape.Kind, $"{name}: a known-size vector before Fit too");
        }
        var outputs = ml.Data.CreateEnumerable<Output>(scored, false).ToArray();
        for (var r = 0; r < rows.Length; r++)
        {
            CollectionAssert.AreEqual(rows[r].Pixels.Select(v => MathF.Max(v, 0)).ToArray(), outputs[r].Hidden, "z = Relu(x) is exact (no node quantized on its path)");
            Assert.HasCount(3, outputs[r].Scores);
        }
        var matmul = model.Report.Tensors.Where(t => t.Layer == "matmul").Select(t => t.Tensor).ToArray();
        CollectionAssert.AreEquivalent(new[] { QuantType.Input, QuantType.Weight }, matmul, "the MatMul behind the int64 input is quantized");
    }

    [TestMethod]
    public void AColumnOfTheWrongType_IsNamedWithTheInput()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        options.InputColumns["k"] = "Pixels2";
        var data = ml.Data.LoadFromEnumerable(Rows(8, 2).Select(r => new FloatRow { Pixels = r.Pixels, Pixels2 = r.Pixels }));
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Observer(options).Fit(data));
        StringAssert.Contains(e.Message, "'Pixels2'");
        StringAssert.Contains(e.Message, "'k'");
        StringAssert.Contains(e.Message, "Int64");
    }

    [TestMethod]
    public void AMissingColumn_IsNamed()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        options.InputColumns.Clear();
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Observer(options).Fit(ml.Data.LoadFromEnumerable(Rows(8, 3))));
        StringAssert.Contains(e.Message, "no column 'x'");
        StringAssert.Contains(e.Message, "InputColumns");
    }

    [TestMethod]
    public void AnOutputTheModelDoesNotHave_IsRefusedAtCreation()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        options.OutputColumns["logits"] = "Logits";
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Observer(options));
        StringAssert.Contains(e.Message, "'logits'");
        StringAssert.Contains(e.Message, "'y'");
    }

    [TestMethod]
    public void AShapeThatDoesNotFitTheInput_IsNamed()
    {
        var ml = new MLContext(seed: 1);
        var options = Options();
        options.InputShapes["x"] = new long[] { 2, 2 };
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Observer(options).Fit(ml.Data.LoadFromEnumerable(Rows(8, 4))));
        StringAssert.Contains(e.Message, "InputShapes['x']");
    }
}
