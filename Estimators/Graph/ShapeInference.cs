using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace MLNetQuant.Graph;

/// <summary>Type and shape inference by ONNX Runtime itself: with every node output declared a graph output (name
/// only), the session it resolves with the ONNX op schemas reports each tensor's element type and shape, symbolic
/// dimensions by name. The quantizer needs them to know which tensors are float and which dimensions are dynamic. They
/// are kept beside the model, not written into its value_info: ORT reports a tensor of unknown rank with no
/// dimensions, which value_info would claim is a scalar.</summary>
internal static class ShapeInference
{
    /// <summary>ONNX Runtime's inferred type and shape of every node output of <paramref name="model"/> (unknown
    /// ranks as no dimensions).</summary>
    /// <exception cref="InvalidOperationException">ONNX Runtime cannot load the model (its message included).</exception>
    public static Dictionary<string, ValueInfoProto> Infer(ModelProto model, string source)
    {
        var probe = model.Clone();
        probe.Graph.ValueInfo.Clear();
        var declared = probe.Graph.Input.Concat(probe.Graph.Output).Select(v => v.Name).ToHashSet(StringComparer.Ordinal);
        var intermediate = probe.Graph.Node.SelectMany(n => n.Output).Where(o => o.Length > 0 && !declared.Contains(o)).Distinct().ToList();
        foreach (var name in intermediate) probe.Graph.Output.Add(new ValueInfoProto { Name = name });
        var inferred = new Dictionary<string, ValueInfoProto>(StringComparer.Ordinal);
        try
        {
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var session = new InferenceSession(probe.ToByteArray(), options);
            foreach (var name in intermediate)
            {
                var metadata = session.OutputMetadata[name];
                if (metadata.OnnxValueType != OnnxValueType.ONNX_TYPE_TENSOR) continue;
                var shape = new TensorShapeProto();
                for (var d = 0; d < metadata.Dimensions.Length; d++)
                    shape.Dim.Add(metadata.Dimensions[d] > 0
                        ? new TensorShapeProto.Types.Dimension { DimValue = metadata.Dimensions[d] }
                        : new TensorShapeProto.Types.Dimension { DimParam = metadata.SymbolicDimensions[d] ?? "" });
                inferred[name] = new ValueInfoProto
                {
                    Name = name,
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)metadata.ElementDataType, Shape = shape } },
                };
            }
            return inferred;
        }
        catch (OnnxRuntimeException e)
        {
            throw new InvalidOperationException($"{source}: ONNX Runtime cannot load the imported model: {e.Message}", e);
        }
    }

    /// <summary>The element type of every tensor: the graph's inputs, outputs and initializers and the inferred ones.</summary>
    public static Dictionary<string, int> ElementTypes(ModelProto model, IReadOnlyDictionary<string, ValueInfoProto> inferred)
    {
        var types = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var value in inferred.Values.Concat(model.Graph.Input).Concat(model.Graph.Output))
            if (value.Type?.TensorType is { } tensor) types[value.Name] = tensor.ElemType;
        foreach (var initializer in model.Graph.Initializer) types[initializer.Name] = initializer.DataType;
        return types;
    }
}
