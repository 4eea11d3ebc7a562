using Google.Protobuf;
using MLNetQuant.Text;
using Onnx;

namespace MLNetQuant.OnnxPtq;

/// <summary>The last step of <see cref="TextInputOptions"/>: a model quantized on <c>TokenizeText</c>'s token columns
/// gets the BERT tokenizer in front of those inputs, so it reads one text and runs at the text's own token count.</summary>
internal static class TextInputModel
{
    /// <summary>The quantized model's bytes with the tokenizer prepended.</summary>
    /// <exception cref="ArgumentException">The model reads a column the tokenizer does not write.</exception>
    public static byte[] Prepend(QuantizedModel quantized, TextInputOptions text)
    {
        var tokenColumns = TextTokenizer.TokenColumns;
        var others = quantized.InputColumns.Except(tokenColumns).ToArray();
        if (others.Length > 0)
            throw new ArgumentException($"TextInput: the model also reads {string.Join(", ", others.Select(o => $"'{o}'"))}, which the tokenizer does not " +
                $"write ({string.Join(", ", tokenColumns)}); map the model's token inputs to those columns with InputColumns.", nameof(OnnxModelOptions.TextInput));
        string? Fed(string column) => quantized.InputColumns.Contains(column) ? column : null;
        var model = ModelProto.Parser.ParseFrom(quantized.Onnx);
        BertTokenizerGraph.Prepend(model, File.ReadAllText(text.VocabularyPath), text.MaxTokens, text.LowerCase, text.TextColumnName,
            (Fed(TextTokenizer.InputIdsColumn), Fed(TextTokenizer.AttentionMaskColumn), Fed(TextTokenizer.TokenTypeIdsColumn)));
        return model.ToByteArray();
    }
}
