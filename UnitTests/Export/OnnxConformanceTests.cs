using MLNetQuant.Core;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Export;

/// <summary>Our quantize/dequantize math against ONNX's own operator conformance data (Debian's libonnx-testdata,
/// installed by .ci/run): FakeQuantize must equal DequantizeLinear(QuantizeLinear(x)) on the QuantizeLinear cases, and
/// the dequantized values of the DequantizeLinear cases must map back to their integers on the same grid.</summary>
[TestClass]
public sealed class OnnxConformanceTests
{
    private const string Root = "/usr/share/libonnx-testdata/data/node";

    private static string Case(string name)
    {
        var folder = Path.Combine(Root, name, "test_data_set_0");
        Assert.IsTrue(Directory.Exists(folder), $"ONNX conformance data missing at {folder}: install Debian's libonnx-testdata.");
        return folder;
    }

    private static TensorProto Read(string folder, string file) => TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(folder, file)));

    private static float[] Floats(TensorProto t) => t.RawData.Length > 0
        ? Enumerable.Range(0, t.RawData.Length / 4).Select(i => BitConverter.ToSingle(t.RawData.Span.Slice(i * 4, 4))).ToArray()
        : t.FloatData.ToArray();

    private static (long[] Values, bool Signed) Integers(TensorProto t)
    {
        var signed = t.DataType == 3; // int8
        var values = t.RawData.Length > 0
            ? t.RawData.ToByteArray().Select(b => signed ? (long)(sbyte)b : b).ToArray()
            : t.Int32Data.Select(v => (long)v).ToArray();
        return (values, signed);
    }

    private static long Axis(string name) =>
        ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(Root, name, "model.onnx"))).Graph.Node[0].Attribute
            .FirstOrDefault(a => a.Name == "axis")?.I ?? 1;

    [TestMethod]
    [DataRow("test_quantizelinear")]
    [DataRow("test_quantizelinear_axis")]
    public void FakeQuantize_EqualsOnnxQuantizeThenDequantize(string name)
    {
        var folder = Case(name);
        var xProto = Read(folder, "input_0.pb");
        var x = Floats(xProto);
        var scales = Floats(Read(folder, "input_1.pb"));
        var (zeroPoints, signed) = Integers(Read(folder, "input_2.pb"));
        var (expectedQ, _) = Integers(Read(folder, "output_0.pb"));
        var (qMin, qMax) = signed ? (-128L, 127L) : (0L, 255L);

        using var input = tensor(x, xProto.Dims.ToArray());
        using var scale = tensor(scales);
        using var zero = tensor(zeroPoints);
        using var fake = scales.Length == 1
            ? FakeQuantize.PerTensor(input, scale, zero, qMin, qMax)
            : FakeQuantize.PerChannel(input, scale, zero, (int)Axis(name), qMin, qMax);
        var actual = fake.data<float>().ToArray();
        var shape = xProto.Dims.ToArray();
        for (var i = 0; i < x.Length; i++)
        {
            var c = scales.Length == 1 ? 0 : (int)(i / shape.Skip((int)Axis(name) + 1).Aggregate(1L, (a, b) => a * b) % scales.Length);
            var expected = (expectedQ[i] - zeroPoints[c]) * scales[c];
            Assert.AreEqual(expected, actual[i], Math.Abs(expected) * 1e-6 + 1e-7, $"{name} element {i}: x = {x[i]}");
        }
    }

    [TestMethod]
    [DataRow("test_dequantizelinear")]
    [DataRow("test_dequantizelinear_axis")]
    public void DequantizedValues_MapBackToTheirIntegers(string name)
    {
        var folder = Case(name);
        var qProto = Read(folder, "input_0.pb");
        var (q, _) = Integers(qProto);
        var scales = Floats(Read(folder, "input_1.pb"));
        var (zeroPoints, _) = Integers(Read(folder, "input_2.pb"));
        var y = Floats(Read(folder, "output_0.pb"));
        var shape = qProto.Dims.ToArray();
        var inner = scales.Length == 1 ? 1 : shape.Skip((int)Axis(name) + 1).Aggregate(1L, (a, b) => a * b);
        for (var i = 0; i < q.Length; i++)
        {
            var c = scales.Length == 1 ? 0 : (int)(i / inner % scales.Length);
            Assert.AreEqual((q[i] - zeroPoints[c]) * scales[c], y[i], 1e-6, $"{name}: (q − z)·s, element {i}");
            Assert.AreEqual(q[i], (long)Math.Round(y[i] / scales[c], MidpointRounding.ToEven) + zeroPoints[c], $"{name}: integer recovery, element {i}");
        }
    }
}
