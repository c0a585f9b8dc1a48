using Google.Protobuf;

namespace NativeSparsity.Tests.Models;

/// <summary>
/// A protobuf message as a list of raw fields, for editing real ONNX files in tests (change a data
/// type, rename a node, drop an initializer) without a schema: nested messages are parsed on demand
/// and re-encoded when changed.
/// </summary>
internal sealed class ProtoMessage
{
    public sealed class Field
    {
        public int Number;
        public WireFormat.WireType Type;
        public ulong Varint;
        public byte[] Bytes = Array.Empty<byte>();
        private ProtoMessage? _message;

        public ProtoMessage Message => _message ??= Parse(Bytes);
        public string Text => System.Text.Encoding.UTF8.GetString(Bytes);
        public void SetText(string text) { Bytes = System.Text.Encoding.UTF8.GetBytes(text); _message = null; }
        internal byte[] Encoded => _message != null ? _message.ToBytes() : Bytes;
    }

    public List<Field> Fields { get; } = new();

    public static ProtoMessage Parse(byte[] bytes)
    {
        var message = new ProtoMessage();
        var input = new CodedInputStream(bytes);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            var f = new Field { Number = WireFormat.GetTagFieldNumber(tag), Type = WireFormat.GetTagWireType(tag) };
            switch (f.Type)
            {
                case WireFormat.WireType.Varint: f.Varint = input.ReadUInt64(); break;
                case WireFormat.WireType.Fixed64: f.Varint = input.ReadFixed64(); break;
                case WireFormat.WireType.Fixed32: f.Varint = input.ReadFixed32(); break;
                case WireFormat.WireType.LengthDelimited: f.Bytes = input.ReadBytes().ToByteArray(); break;
                default: throw new InvalidDataException($"wire type {f.Type} is not handled");
            }
            message.Fields.Add(f);
        }
        return message;
    }

    public byte[] ToBytes()
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        foreach (var f in Fields)
        {
            output.WriteTag(f.Number, f.Type);
            switch (f.Type)
            {
                case WireFormat.WireType.Varint: output.WriteUInt64(f.Varint); break;
                case WireFormat.WireType.Fixed64: output.WriteFixed64(f.Varint); break;
                case WireFormat.WireType.Fixed32: output.WriteFixed32((uint)f.Varint); break;
                default: output.WriteBytes(ByteString.CopyFrom(f.Encoded)); break;
            }
        }
        output.Flush();
        return stream.ToArray();
    }

    public IEnumerable<Field> All(int number) => Fields.Where(f => f.Number == number);
    public Field One(int number) => Fields.Single(f => f.Number == number);

    // ONNX field numbers: ModelProto.graph 7; GraphProto.node 1, initializer 5; NodeProto.input 1, name 3, op_type 4;
    // TensorProto.data_type 2, name 8, data_location 14.
    public ProtoMessage Graph => One(7).Message;
    public Field Initializer(string name) => Graph.All(5).Single(f => f.Message.One(8).Text == name);
    public Field Node(string name) => Graph.All(1).Single(f => f.Message.All(3).Any(n => n.Text == name));
}
