# 50,000 products as a Merchant TSV whose photos are the 1,200 shop-feeds photos under distinct URLs.
import os, sys
root, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = []
for d, _, fs in os.walk(root):
    for f in fs:
        files.append(os.path.relpath(os.path.join(d, f), root))
files.sort()
print("id\ttitle\timage_link\tprice\tavailability\tproduct_type\tcolor\tbrand")
for i in range(n):
    f = files[i % len(files)]
    print(f"P{i:06d}\tProduct {i}\thttp://127.0.0.1:{port}/p/{i}/{f}\t{100 + i % 900}.00 USD\tin_stock\tApparel > Topwear > Type{i % 40}\tC{i % 12}\tBrand{i % 50}")
