using Google.Protobuf;
using Onnx;

namespace MLNetQuant.Text;

/// <summary>Writes the BERT tokenizer as an ONNX model: ONNX Runtime Extensions' <c>BertTokenizer</c> operator
/// (domain <c>ai.onnx.contrib</c>; Hugging Face's BertTokenizer — basic tokenization, then WordPiece over the
/// vocabulary the model carries as an attribute) followed by standard ops that pad its three outputs with zeros to
/// maxTokens. One text in ([1, 1]: what ML.NET feeds for a text column), three Int64 vectors of maxTokens out.</summary>
/// <remarks>Why an ONNX model and not a C# tokenizer: an ONNX model is what ML.NET's own OnnxTransformer saves into
/// and loads from a .zip, so the tokenizer travels with the embedder and production needs no MLNetQuant.</remarks>
internal static class BertTokenizerGraph
{
    /// <summary>The operator domain of ONNX Runtime Extensions.</summary>
    public const string ExtensionsDomain = "ai.onnx.contrib";

    /// <summary>The model's bytes.</summary>
    /// <param name="vocabulary">vocab.txt's content: one token per line, line i is id i.</param>
    /// <param name="maxTokens">Tokens per row, [CLS] and [SEP] included: longer texts are truncated (before [SEP]).</param>
    /// <param name="lowerCase">Lower-case and strip accents first (uncased models; Hugging Face's default ties the two).</param>
    /// <param name="textName">The graph input's name: the text column's.</param>
    /// <param name="outputNames">The graph outputs' names: ids, mask, segment ids.</param>
    public static byte[] Build(string vocabulary, int maxTokens, bool lowerCase, string textName,
        (string InputIds, string AttentionMask, string TokenTypeIds) outputNames)
    {
        var graph = new GraphProto { Name = "bert_tokenizer" };
        graph.Input.Add(Value(textName, TensorProto.Types.DataType.String, 1, 1));
        graph.Initializer.Add(Int64s("tokenizer.flat", -1));
        graph.Initializer.Add(Int64s("tokenizer.max_tokens", maxTokens));
        graph.Initializer.Add(Int64s("tokenizer.no_leading_pad", 0));
        graph.Node.Add(Node("Reshape", new[] { textName, "tokenizer.flat" }, "tokenizer.text"));

        var tokenize = Node("BertTokenizer", new[] { "tokenizer.text" }, "tokenizer.ids", "tokenizer.types", "tokenizer.mask");
        tokenize.Domain = ExtensionsDomain;
        tokenize.Attribute.Add(new AttributeProto { Name = "vocab_file", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(vocabulary) });
        tokenize.Attribute.Add(Int("do_lower_case", lowerCase ? 1 : 0));
        tokenize.Attribute.Add(Int("strip_accents", lowerCase ? 1 : 0));
        tokenize.Attribute.Add(Int("max_length", maxTokens));
        graph.Node.Add(tokenize);

        // pads = [0, maxTokens − tokens]: zeros after the text, so every row is maxTokens long (mask 0 there).
        graph.Node.Add(Node("Shape", new[] { "tokenizer.ids" }, "tokenizer.count"));
        graph.Node.Add(Node("Sub", new[] { "tokenizer.max_tokens", "tokenizer.count" }, "tokenizer.padding"));
        var pads = Node("Concat", new[] { "tokenizer.no_leading_pad", "tokenizer.padding" }, "tokenizer.pads");
        pads.Attribute.Add(Int("axis", 0));
        graph.Node.Add(pads);
        foreach (var (source, name) in new[] { ("tokenizer.ids", outputNames.InputIds), ("tokenizer.mask", outputNames.AttentionMask), ("tokenizer.types", outputNames.TokenTypeIds) })
        {
            graph.Node.Add(Node("Pad", new[] { source, "tokenizer.pads" }, name));
            graph.Output.Add(Value(name, TensorProto.Types.DataType.Int64, maxTokens));
        }

        var model = new ModelProto { IrVersion = 8, ProducerName = "MLNetQuant", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = ExtensionsDomain, Version = 1 });
        return model.ToByteArray();
    }

    private static NodeProto Node(string op, string[] inputs, params string[] outputs)
    {
        var node = new NodeProto { OpType = op, Name = outputs[0] };
        node.Input.AddRange(inputs);
        node.Output.AddRange(outputs);
        return node;
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static TensorProto Int64s(string name, long value)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.Add(1);
        tensor.Int64Data.Add(value);
        return tensor;
    }

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, params long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = dim });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }
}
